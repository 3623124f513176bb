import pytest
from django.contrib.auth.models import Permission, User


@pytest.fixture
def alice(db):
    """Alice curates the device catalog: staff, with the device permissions and nothing more."""
    user = User.objects.create_user("alice", is_staff=True)  # force_login: no password hashing needed
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="recommender"))
    return user


@pytest.fixture
def bob(db):
    """Bob builds models in the portal; he is not staff."""
    return User.objects.create_user("bob")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client

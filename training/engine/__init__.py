"""Django-free training core: model zoo, data pipeline, training loop."""

"""`./tango test --shards N`: every test module runs in exactly one shard, and no two shards share a database, a
Redis database or a data folder."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import conftest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("test_shards_runner", ROOT / "bin" / "test_shards.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def test_every_module_runs_in_exactly_one_shard_with_all_its_tests():
    nodeids = [f"app/tests/test_{m}.py::test_{t}" for m in "abcde" for t in range(3)]
    shards = []
    for k in (1, 2):
        items = [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]
        deselected = []
        hook = SimpleNamespace(pytest_deselected=lambda items, into=deselected: into.extend(items))
        config = SimpleNamespace(hook=hook)
        conftest._keep_shard(config, items, k, 2)
        shards.append([item.nodeid for item in items])
        assert len(items) + len(deselected) == len(nodeids)
    assert sorted(shards[0] + shards[1]) == sorted(nodeids)
    modules = [{nodeid.split("::")[0] for nodeid in shard} for shard in shards]
    assert not modules[0] & modules[1] and len(modules[0]) == 3 and len(modules[1]) == 2


def test_the_slow_modules_are_spread_so_the_shards_take_about_as_long():
    seconds = {"default": 1, "modules": {"a.py": 100, "b.py": 90, "c.py": 60, "d.py": 40}}
    one, two = conftest.shard_modules(["a.py", "b.py", "c.py", "d.py", "e.py", "f.py"], 2, seconds)
    assert sorted(one + two) == ["a.py", "b.py", "c.py", "d.py", "e.py", "f.py"]
    load = [sum(seconds["modules"].get(m, 1) for m in shard) for shard in (one, two)]
    assert load == [142, 150]  # every second module gave a, c, e (161) against b, d, f (131)
    # The suite's own split, by the seconds measured in CI, is within 5% of even.
    modules = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("*/tests/test_*.py"))
    measured = json.loads((ROOT / "bin" / "test_seconds.json").read_text())
    load = [sum(measured["modules"].get(m, measured["default"]) for m in shard)
            for shard in conftest.shard_modules(modules, 2)]
    assert abs(load[0] - load[1]) <= 0.05 * sum(load)


def test_shards_get_their_own_database_redis_database_and_data_folder(tmp_path):
    base = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/tango_ci", "REDIS_URL": "redis://127.0.0.1:6379/5",
            "TANGO_DATA_DIR": str(tmp_path)}
    one, two = runner.shard_env(base, 1, 2), runner.shard_env(base, 2, 2)
    assert (one["DATABASE_URL"], two["DATABASE_URL"]) == (base["DATABASE_URL"] + "_shard1",
                                                          base["DATABASE_URL"] + "_shard2")
    assert (one["REDIS_URL"], two["REDIS_URL"]) == ("redis://127.0.0.1:6379/5", "redis://127.0.0.1:6379/6")
    assert one["TANGO_DATA_DIR"] != two["TANGO_DATA_DIR"] and Path(two["TANGO_DATA_DIR"]).is_dir()
    assert (one["TANGO_TEST_SHARD"], two["TANGO_TEST_SHARD"]) == ("1/2", "2/2")
    # embedded (no URLs): nothing to separate but the data folder
    assert "DATABASE_URL" not in runner.shard_env({"TANGO_DATA_DIR": str(tmp_path)}, 2, 2)

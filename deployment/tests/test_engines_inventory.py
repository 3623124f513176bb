"""`./tango engines`: every engine with whether it converts here, its versions, and how to install what is missing."""

from deployment.engine.converters.inventory import rows
from deployment.engine.converters.tvm import cross_compiler
from tango_common.sideenvs import RKNN, TFLITE


def by_engine():
    return {row["engine"]: row for row in rows()}


def test_every_engine_is_listed_with_what_it_offers_here():
    table = by_engine()
    assert set(table) == {"pytorch", "onnxruntime", "openvino", "tensorrt", "tvm", "rknn", "tflite"}
    tvm = table["tvm"]
    assert tvm["available"] and tvm["here"] == ["fp32"] and tvm["versions"]["apache-tvm"]
    assert tvm["targets"]["host"] == "available"
    assert (tvm["targets"]["aarch64"] == "available") == bool(cross_compiler())
    tflite = table["tflite"]
    if TFLITE.ready():
        assert tflite["available"] and tflite["here"] == ["fp32", "fp16", "int8"] and tflite["versions"]["onnx2tf"]
    else:
        assert not tflite["available"] and "./tango engines install tflite" in tflite["install"]


def test_rknn_says_how_to_install_its_environment_when_it_is_missing(tmp_path, monkeypatch):
    if RKNN.ready():
        row = by_engine()["rknn"]
        assert row["available"] and row["on_device"] == ["fp16", "int8"]
        assert row["versions"]["rknn-toolkit2"] == "2.3.2" and row["install"] == ""
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path))
    row = by_engine()["rknn"]
    assert not row["available"] and row["on_device"] == []
    assert "./tango engines install rknn" in row["why"] and "./tango engines install rknn" in row["install"]


def test_a_missing_side_environment_gives_one_size_in_its_reason_and_its_install_line(tmp_path, monkeypatch):
    # Regression: TFLite's reason said "about 2.6 GB" and the install line under it "about 1.5 GB".
    monkeypatch.setenv("TANGO_VENV_ROOT", str(tmp_path))
    table = by_engine()
    for env in (RKNN, TFLITE):
        row = table[env.name]
        assert env.size_hint in row["why"] and env.size_hint in row["install"]

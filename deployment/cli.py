"""`./tango engines` (manage.py tango engines), registered in DeploymentConfig.ready: list the engines, or install
what one needs (`./tango engines install rknn`)."""


def add_engines_arguments(parser) -> None:
    parser.add_argument("verb", nargs="?", choices=["list", "install"], default="list")
    parser.add_argument("name", nargs="?", help="Engine to install: tvm (its aarch64 cross compiler), rknn, tflite.")


def engines(command, *, verb="list", name=None, **_) -> None:
    from .engine.converters.inventory import install, rows

    if verb == "install":
        if not name:
            command.stderr.write("Which engine? ./tango engines install tvm|rknn|tflite")
            raise SystemExit(2)
        install(name, log=command.stdout.write)
        return
    for row in rows():
        mark = command.style.SUCCESS("available") if row["available"] else command.style.WARNING("missing  ")
        precisions = ", ".join([*row["here"], *(f"{p} (for the device)" for p in row["on_device"])]) or "—"
        command.stdout.write(f"{row['label']:<16} {mark}  {precisions}")
        if row["versions"]:
            command.stdout.write("    versions: " + ", ".join(f"{k} {v}" for k, v in row["versions"].items()))
        for target, state in row.get("targets", {}).items():
            command.stdout.write(f"    target {target}: {state}")
        if row["why"]:
            command.stdout.write(f"    why: {row['why']}")
        if row["install"]:
            command.stdout.write(f"    install: {row['install']}")


def engines_setup_line() -> str:
    """`tango setup`'s line: the engines a conversion can use here, and the command for the others."""
    from tango_common.engines import engine_support
    from tango_common.sideenvs import SIDE_ENVS

    missing = [name for name, env in SIDE_ENVS.items() if not env.ready()]
    ready = [name for name in ("onnxruntime", "openvino", "tvm", "rknn", "tflite") if engine_support(name).built]
    line = f"Engines converting here: {', '.join(ready) or 'none'}."
    if missing:
        line += f" Not installed: {', '.join(missing)} (./tango engines install NAME; ./tango engines lists them)."
    return line

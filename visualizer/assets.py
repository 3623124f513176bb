"""The network editor's front-end libraries, fetched from the npm registry at setup (never from a CDN at run time).

`python -m visualizer.assets` (and `tango setup`, `./tango test`) puts pinned files into static/vendor/: each
package's tarball is checked against its sha256 before the file is taken out of it, and the file against its own.
Files already there with the right hash are kept, so a second run needs no network. Uses `npm pack` when npm is
installed, else the registry's tarball URL.
"""

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    tarball_sha256: str
    member: str  # path inside the tarball
    sha256: str
    name: str  # file name under static/vendor/
    license: str

    @property
    def tarball_url(self) -> str:
        return f"{REGISTRY}/{self.package}/-/{self.package.split('/')[-1]}-{self.version}.tgz"


ASSETS = (
    Asset("cytoscape", "3.35.0", "058a81a7534777ea68dc737e9b77bd5b701e00acd9bee246245a576eeeac32e6",
          "package/dist/cytoscape.min.js", "71fa9ebec21a7ca2c40cff6aacc30d1f6464e363662ad4b2c197e1adc770cd94",
          "cytoscape.min.js", "MIT"),
    Asset("dagre", "0.8.5", "ffaf576ea24546aed65aa2bed174d77fe4fbfe7985aa6c4a7cd0293c1994c4ed",
          "package/dist/dagre.min.js", "62eb9787ccfdbdf4148d4d99d31dbf9ee4770eafee81e637d759b52aac22cd51",
          "dagre.min.js", "MIT"),
    Asset("cytoscape-dagre", "2.5.0", "cbb58d8e719b0c0ed891a140ab050af8aac35a11b0b51f0b4ec46238fce47577",
          "package/cytoscape-dagre.js", "bf70fe402991dcbff33e05a7e4a5271c78020bb75e85d1c80ab7538e4157112e",
          "cytoscape-dagre.js", "MIT"),
)


class AssetError(RuntimeError):
    pass


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def present(asset: Asset, vendor: Path = VENDOR) -> bool:
    path = vendor / asset.name
    return path.is_file() and _sha256(path.read_bytes()) == asset.sha256


def _tarball(asset: Asset) -> bytes:
    npm = shutil.which("npm")
    if npm:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([npm, "pack", f"{asset.package}@{asset.version}", "--pack-destination", tmp,
                                   "--silent"], capture_output=True, text=True, timeout=300)
            files = list(Path(tmp).glob("*.tgz"))
            if done.returncode == 0 and files:
                return files[0].read_bytes()
    with urllib.request.urlopen(asset.tarball_url, timeout=120) as response:  # noqa: S310 (a fixed https URL)
        return response.read()


def fetch(asset: Asset, vendor: Path = VENDOR) -> Path:
    data = _tarball(asset)
    if _sha256(data) != asset.tarball_sha256:
        raise AssetError(f"{asset.package}@{asset.version}: the tarball's sha256 is not the pinned one; not used.")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile(asset.member)
        if member is None:
            raise AssetError(f"{asset.package}@{asset.version}: no {asset.member} in the tarball.")
        content = member.read()
    if _sha256(content) != asset.sha256:
        raise AssetError(f"{asset.package}@{asset.version}: {asset.member}'s sha256 is not the pinned one.")
    vendor.mkdir(parents=True, exist_ok=True)
    partial = vendor / (asset.name + ".part")
    partial.write_bytes(content)
    partial.replace(vendor / asset.name)
    return vendor / asset.name


def ensure(vendor: Path = VENDOR, *, say=print) -> list[str]:
    """Fetch what is missing or differs; returns the names fetched. AssetError when one cannot be had."""
    fetched = []
    for asset in ASSETS:
        if present(asset, vendor):
            continue
        try:
            fetch(asset, vendor)
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
            raise AssetError(f"{asset.package}@{asset.version}: could not fetch it from the npm registry ({exc}). "
                             "The network editor needs it; run `python -m visualizer.assets` where the registry "
                             "is reachable.") from None
        say(f"fetched {asset.package}@{asset.version} -> static/vendor/{asset.name}")
        fetched.append(asset.name)
    return fetched


def setup_step() -> str:
    """`tango setup`'s step: the editor's libraries in place (a missing one is reported, not fatal)."""
    try:
        fetched = ensure(say=lambda line: None)
    except AssetError as exc:
        return f"Network editor: {exc}"
    return (f"Network editor: fetched {', '.join(fetched)}." if fetched
            else "Network editor: Cytoscape.js and dagre in place.")


def main() -> int:
    try:
        ensure()
    except AssetError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Network editor libraries in {VENDOR}: " + ", ".join(f"{a.package}@{a.version}" for a in ASSETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

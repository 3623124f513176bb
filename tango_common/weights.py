"""Reading a PyTorch state dict safely: the portal checks an upload with it, training loads from it."""

from pathlib import Path


def read_state_dict(path: Path) -> dict:
    """The tensors of a .pt/.pth file, read without running pickled code; ValueError says why a file is not one."""
    import torch  # here: the web process imports this module, and most of its requests never need torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: never run pickled code
    except Exception as error:  # torch raises several types for garbage; the user needs one clear message
        raise ValueError(f"{path.name} is not a PyTorch weights file ({type(error).__name__}).") from error
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a common checkpoint wrapper
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict (a mapping of parameter names to tensors).")
    # Weights saved from nn.DataParallel or torch.compile carry a prefix on every key.
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state

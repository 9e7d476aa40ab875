"""Clinical ML Studio core library: plain Python, never imports streamlit."""
import os as _os

_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def _ensure_host_devices(count: int = 4) -> None:
    """NumPyro runs chains in parallel only if XLA sees several host devices, and XLA
    reads this flag once, when JAX is first imported; so set it on importing core."""
    flags = _os.environ.get("XLA_FLAGS", "")
    if _DEVICE_FLAG not in flags:
        _os.environ["XLA_FLAGS"] = f"{flags} {_DEVICE_FLAG}={count}".strip()


_ensure_host_devices(int(_os.environ.get("BAYES_CHAINS", "4") or 4))

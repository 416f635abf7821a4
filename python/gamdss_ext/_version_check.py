"""The torch ABI guard, kept free of the compiled module so it can run before loading it."""

from __future__ import annotations


def check_torch_version(built: str, running: str) -> None:
    """Raise ``ImportError`` unless ``running`` is exactly the torch ``built`` against.

    A C++ extension links against torch's C++ symbols, which change between releases; a
    mismatch shows up as an undefined-symbol error or worse, so refuse it up front.
    """
    if built != running:
        raise ImportError(
            f"gamdss_ext was compiled against torch {built} but torch {running} is "
            "imported. Reinstall gamdss in this environment (`pip install .` from the "
            f"source tree) or install torch=={built.split('+')[0]}."
        )

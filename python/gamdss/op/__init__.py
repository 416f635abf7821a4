"""The op's Python face: checks, packing, windows, the calls and the pure-PyTorch reference."""

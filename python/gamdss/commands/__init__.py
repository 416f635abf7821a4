"""Subcommands of ``gamdss``; each module here defines ``register(subparsers)``.

Modules import their heavy dependencies inside the command function, so that
``gamdss --help`` stays fast.
"""

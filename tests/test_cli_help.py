"""``gamdss --help`` and every subcommand's help: answered without importing torch, a help
text for every flag with its default shown, no reST markup, one spelling of the progress flag;
and one exit-status rule for every command, applied in one place (gamdss.cli.main)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

import gamdss
from gamdss.cli import build_parser, main
from gamdss.commands._common import BadInput, RunFailed, cli_wording, flag_wording, plain_text

MARKUP = ("``", ":func:", ":mod:", ":class:", ":data:", ":meth:", ":attr:")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser by its command words: '' (gamdss), 'reselect', 'data check', ..."""
    out = {}

    def walk(words: str, parser: argparse.ArgumentParser) -> None:
        out[words] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(f"{words} {name}".strip(), sub)

    walk("", build_parser())
    return out


COMMANDS = sorted(_parsers())


def test_help_of_every_command_imports_no_torch():
    """A property, not a timing: the help path (and ``--version``) never loads torch (nor the
    toolkit's modules)."""
    script = (
        "import json, sys, contextlib, io\n"
        "from gamdss.cli import main\n"
        "for words in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main([*words.split(), '--help'])\n"
        "        except SystemExit as e:\n"
        "            assert e.code == 0, (words, e.code)\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(['--version'])\n"
        "        except SystemExit as e:\n"
        "            assert e.code == 0, ('--version', e.code)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'matplotlib', 'cv2'))\n"
        "print(json.dumps(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(COMMANDS)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("words", COMMANDS)
def test_every_flag_has_help_and_no_markup(words):
    parser = _parsers()[words]
    text = parser.format_help()
    assert not [m for m in MARKUP if m in text], text
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if isinstance(action, argparse._SubParsersAction):  # each subcommand's one-line help
            assert all(choice.help for choice in action._choices_actions), words
            continue
        assert action.help, f"gamdss {words}: {action.option_strings or action.dest} has no help text"
        shown = parser._get_formatter()._get_help_string(action)
        if action.option_strings and not any(action.default is v for v in (None, False)):
            assert "default" in shown, f"gamdss {words} {action.option_strings[0]}: default not shown"


def test_defaults_are_shown_in_the_help():
    text = _parsers()["reselect"].format_help()
    assert "(default: 256.0)" in text and "(default: cpu)" in text
    demo = " ".join(_parsers()["demo"].format_help().split())
    assert "(default: 5)" in demo and "(default: 160)" in demo and "(default: 0)" in demo


@pytest.mark.parametrize("words", [w for w in COMMANDS if w])
def test_one_spelling_of_the_progress_flag(words):
    parser = _parsers()[words]
    options = {s for a in parser._actions for s in a.option_strings}
    if "--quiet" in options or "--no-progress" in options:
        assert {"--quiet", "--no-progress"} <= options
        text = parser.format_help()
        assert "--no-progress" in text and "--quiet" not in text  # --quiet: a hidden alias
        dests = {a.dest for a in parser._actions if {"--quiet", "--no-progress"} & set(a.option_strings)}
        assert dests == {"no_progress"}


def test_quiet_is_an_alias_of_no_progress():
    parser = build_parser()
    for flag in ("--quiet", "--no-progress"):
        args = parser.parse_args(["bench", "keyframes", flag])
        assert args.no_progress is True
    assert parser.parse_args(["bench", "keyframes"]).no_progress is False


def test_plain_text_removes_rest_markup():
    assert plain_text("``gamdss reselect CACHE``: see :func:`gamdss.op.api.reselect`") == (
        "gamdss reselect CACHE: see gamdss.op.api.reselect"
    )
    assert plain_text(":class:`~gamdss.settings.reselection.ReselectionSettings`") == "ReselectionSettings"


def test_messages_use_flags_not_parameter_names():
    assert cli_wording("exist: a, b; pass overwrite=True (--overwrite) to replace them") == (
        "exist: a, b; pass --overwrite to replace them"
    )
    assert cli_wording("give the file with annotations=... (or --annotations)") == "give the file with --annotations"
    assert (
        flag_wording("detect_frames must be >= 0, got -1", ("detect_frames",)) == "--detect-frames must be >= 0, got -1"
    )
    assert flag_wording("--detect-frames is fine", ("detect_frames",)) == "--detect-frames is fine"


# ------------------------------------------------------------------------------ exit status
def test_a_usage_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["reselect"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gamdss reselect: ") and "cache" in err[0] and "--help" in err[0]


@pytest.mark.parametrize("exc, status", [(BadInput("--x is wrong"), 2), (RunFailed("disk full"), 1)])
def test_command_errors_go_through_main(monkeypatch, capsys, exc, status):
    import gamdss.commands.bench as bench

    def raising(args):
        raise exc

    monkeypatch.setattr(bench, "_keyframes", raising)
    assert main(["bench", "keyframes", "--quick"]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gamdss bench keyframes: {exc}"]


def test_ctrl_c_is_130(monkeypatch, capsys):
    import gamdss.commands.bench as bench

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_keyframes", interrupted)
    assert main(["bench", "keyframes"]) == 130
    assert capsys.readouterr().err.strip() == "gamdss bench keyframes: interrupted"


# ------------------------------------------------------------------ found by review (2026-12-02)
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"gamdss {gamdss.__version__}\n"
    assert "--version" in build_parser().format_help()


@pytest.mark.parametrize("words", COMMANDS)
def test_every_command_has_a_description(words):
    """``gamdss bench --help``, ``bench keyframes --help`` and ``data --help`` had none."""
    assert _parsers()[words].description, f"gamdss {words} --help has no description"


def test_bench_keyframes_help_names_its_outputs():
    from gamdss.accuracy.keyframes import output_paths

    text = " ".join(_parsers()["bench keyframes"].format_help().split())
    names = [p.name for key, p in output_paths("x").items() if not key.startswith("plot_")]
    assert names and all(name in text for name in names), text
    assert "error_vs_lambda_" in text and "(default: bench_keyframes)" in text


def test_train_help_names_its_default_folder_and_outputs():
    from gamdss.train.config import RunConfig
    from gamdss.train.layout import OWNED_FILES

    text = " ".join(_parsers()["train"].format_help().split())
    assert RunConfig().output_dir in text and "runs/<preset>" in text
    assert all(name in text for name in OWNED_FILES), text


def test_demo_threads_shows_its_default():
    parser = _parsers()["demo"]
    (threads,) = [a for a in parser._actions if "--threads" in a.option_strings]
    assert "(default: 1)" in parser._get_formatter()._get_help_string(threads)


def test_train_needs_only_its_config(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train"])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("gamdss train: the following arguments are required: config ") and "key=value" not in line


#: each command with its required arguments and an unknown flag
UNKNOWN_FLAG = {
    "reselect": ["reselect", "cache", "--bogus"],
    "audit": ["audit", "cache", "--bogus"],
    "preprocess": ["preprocess", "root", "--dataset", "casme2", "--out", "cache", "--bogus"],
    "train": ["train", "tiny-cpu", "--bogus"],
    "demo": ["demo", "--bogus"],
    "bench keyframes": ["bench", "keyframes", "--bogus"],
    "data check": ["data", "check", "--dataset", "casme2", "--bogus"],
}


def test_unknown_flag_cases_cover_every_command():
    leaves = {w for w in COMMANDS if w and not any(other.startswith(w + " ") for other in COMMANDS)}
    assert set(UNKNOWN_FLAG) == leaves


@pytest.mark.parametrize("words", sorted(UNKNOWN_FLAG))
def test_an_unknown_flag_is_reported_under_its_command(capsys, words):
    """Was ``gamdss: unrecognized arguments: --bogus (see gamdss --help)`` for every command."""
    with pytest.raises(SystemExit) as info:
        main(UNKNOWN_FLAG[words])
    assert info.value.code == 2
    cap = capsys.readouterr()
    assert cap.err.strip().splitlines() == [
        f"gamdss {words}: unrecognized arguments: --bogus (see gamdss {words} --help)"
    ]
    assert cap.out == ""


@pytest.mark.parametrize("words", sorted(UNKNOWN_FLAG))
def test_an_unknown_flag_before_the_command_is_reported_under_gamdss(capsys, words):
    """``gamdss --bogus audit ...`` gave the flag to gamdss, not to the command."""
    argv = ["--bogus", *(a for a in UNKNOWN_FLAG[words] if a != "--bogus")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    cap = capsys.readouterr()
    assert cap.err.strip().splitlines() == ["gamdss: unrecognized arguments: --bogus (see gamdss --help)"]
    assert cap.out == ""

"""``python -m quayside.serving`` (the image's entry point) and ``quayside serve`` take the same flags."""

from __future__ import annotations

import typer

from quayside.cli.serve import serve
from quayside.serving.__main__ import parse_options
from quayside.serving.options import ServeOptions

# What only the CLI takes: images serve without --trust, and with the runtime the build chose.
CLI_ONLY = {"--runtime", "--trust", "--help"}


def _serve_flags() -> dict[str, bool]:
    """Each option of ``quayside serve``, and whether it is an on/off flag (takes no value)."""
    app = typer.Typer(add_completion=False)
    app.command()(serve)
    command = typer.main.get_command(app)
    return {
        flag: bool(getattr(param, "is_flag", False))
        for param in command.params
        for flag in (*param.opts, *param.secondary_opts)
        if flag.startswith("-")
    }


def test_every_flag_of_quayside_serve_but_the_cli_only_ones_works_on_the_entry_point(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("a-token-of-sixteen-or-more\n")
    values = {"--host": "127.0.0.1", "--auth-token-file": str(token_file), "--allowed-hosts": "localhost"}
    for flag, is_flag in sorted(_serve_flags().items()):
        if flag in CLI_ONLY:
            continue
        argv = ["pkg", flag] if is_flag else ["pkg", flag, values.get(flag, "1")]
        assert parse_options(argv)[0] == "pkg", flag


def test_the_entry_point_reads_the_shared_flags_as_quayside_serve_does():
    package, options = parse_options(
        ["pkg", "--no-batching", "--max-body-mb", "0.5", "-q", "--grace-period", "3", "--max-batch-size", "8"]
    )
    assert package == "pkg"
    assert (options.batching, options.max_body_bytes, options.quiet) == (False, 512 * 1024, True)
    assert (options.grace_period_s, options.max_batch_size) == (3.0, 8)
    assert parse_options(["pkg", "--batching"])[1].batching is True
    assert parse_options(["pkg"])[1].max_body_bytes == ServeOptions().max_body_bytes


def test_the_grpc_port_comes_from_the_flag_or_grpc_port_in_the_environment(monkeypatch):
    assert parse_options(["pkg"])[1].grpc_port == ServeOptions().grpc_port == 8081
    assert parse_options(["pkg", "--grpc-port", "9001"])[1].grpc_port == 9001
    monkeypatch.setenv("GRPC_PORT", "0")  # as in an image: 0 turns gRPC off
    assert parse_options(["pkg"])[1].grpc_port == 0
    monkeypatch.setenv("GRPC_PORT", "9002")
    assert parse_options(["pkg"])[1].grpc_port == 9002


def test_ort_spinning_is_off_unless_the_flag_or_ort_spinning_in_the_environment_asks(monkeypatch):
    assert parse_options(["pkg"])[1].ort_spinning is False
    assert parse_options(["pkg", "--ort-spinning"])[1].ort_spinning is True
    monkeypatch.setenv("ORT_SPINNING", "1")  # as an image is told
    assert parse_options(["pkg"])[1].ort_spinning is True
    assert parse_options(["pkg", "--no-ort-spinning"])[1].ort_spinning is False

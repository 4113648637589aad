"""A stop signal is a stop, not a failure: jobs raise `Stopped`, the workflow notes it."""

from __future__ import annotations

import os
import signal

import pytest

from weightzoo import stops


@pytest.fixture(autouse=True)
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in stops.STOP_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_job_turns_sigterm_into_a_stop_and_ignores_the_next_one():
    stops.raise_on_stop()
    with pytest.raises(stops.Stopped) as info:
        os.kill(os.getpid(), signal.SIGTERM)
    stop = info.value
    assert (stop.signal_name, stop.exit_code) == ("SIGTERM", 143)
    assert str(stop) == "stopped by SIGTERM (not failed); a rerun does this job again"
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # unwinding is not cut short
    assert not isinstance(stop, Exception)  # `except Exception` on the way does not take it


def test_the_workflow_notes_a_stop_and_passes_it_on_to_snakemake():
    passed = []
    signal.signal(signal.SIGTERM, lambda s, f: passed.append(s))  # Snakemake's graceful stop
    watch = stops.RunWatch()
    assert watch.summary() is None  # a plain failure says nothing of stops
    watch.install()
    os.kill(os.getpid(), signal.SIGTERM)
    assert watch.received == [signal.SIGTERM] and passed == [signal.SIGTERM]
    assert watch.exit_code == 143
    assert watch.summary().startswith("weightzoo: stopped by SIGTERM (not failed); run the same")


def test_ctrl_c_still_interrupts_the_workflow():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    watch = stops.RunWatch()
    watch.install()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    assert watch.received == [signal.SIGINT] and watch.exit_code == 130

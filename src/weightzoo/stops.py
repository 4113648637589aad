"""Stops: a job or a whole run ended by a signal says so in one line, and what a rerun does.

A scheduler stops work with SIGTERM (SLURM at a time limit or on preemption, then SIGKILL
after its grace time), a terminal with SIGINT (Ctrl-C). Neither is a failure. A job turns
the first such signal into `Stopped`, which unwinds it like an exception (temporary files go,
its lock is released), and ends with one line saying where it stopped and what a rerun
resumes; the workflow, told by Snakemake's `onerror` hook, ends with one line likewise.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A job was stopped by a signal. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way takes it for an error; `resume` says what a rerun does."""

    def __init__(self, signum: int, resume: str = "a rerun does this job again") -> None:
        super().__init__(signum)
        self.signum = signum
        self.resume = resume

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's code of a process ended by the signal: 128 + its number."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"stopped by {self.signal_name} (not failed); {self.resume}"


def _raise_stopped(signum: int, frame) -> None:
    # a second signal while the job unwinds would cut its clean-up short: ignore the rest
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def raise_on_stop() -> None:
    """In a job: make SIGTERM and SIGINT raise Stopped in the main thread (the first one;
    later ones are ignored while the job unwinds)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_stopped)


class RunWatch:
    """In the workflow process: notes the stop signals Snakemake receives, then passes them
    on to Snakemake's own handlers (SIGTERM: finish the running jobs, start no more;
    SIGINT: stop them), so that the run can end by saying it was stopped."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame) -> None:
        self.received.append(signum)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    @property
    def exit_code(self) -> int:
        """128 + the first stop signal, as a shell reports a process it ended."""
        return 128 + self.received[0] if self.received else 1

    def summary(self) -> str | None:
        """The run's last line if a stop signal came (None otherwise): which signal, and what
        the same command does when run again."""
        if not self.received:
            return None
        name = signal.Signals(self.received[0]).name
        return (
            f"weightzoo: stopped by {name} (not failed); run the same command again to go on: "
            "finished files are kept, the jobs that did not finish run again and training "
            "jobs resume from their last saved epoch"
        )

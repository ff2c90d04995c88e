"""The live line of a search, for whoever watches it (a terminal or a notebook): a bar of
trials ended out of `--trials`, with the counts (done, running, pruned), the best so far
and the epoch of the trial this worker trains. Silent when nobody watches (logs, CI); the
one line per ended trial is printed either way."""
from __future__ import annotations

from typing import Callable

from lowres.basics import progress
from lowres.tune.study import counts, trial_name


class SearchBar:
    def __init__(self, study, trials: int, max_epochs: int, say: Callable[[str], None]):
        self.study, self.max_epochs, self._say = study, max_epochs, say
        self.watched = progress.interactive()  # asked before the trials' own bars are muted
        self.bar = progress.bar(total=trials, desc="search", unit="trial", leave=True)

    def epoch(self, name: str, row: dict) -> None:
        """After each epoch of this worker's trial: where it is, and the search's state."""
        if not self.watched:
            return
        val = row.get("val_acc")
        here = f"{name} epoch {int(row['epoch'])}/{self.max_epochs}"
        here += f" val {val:.3f}" if val is not None else ""
        self.bar.set_postfix_str(f"{here} | {self._summary(counts(self.study))}")

    def ended(self, line: str) -> None:
        """A trial ended (here or in another worker): its line, and the bar moved on."""
        if self.watched:
            c = counts(self.study)
            self.bar.update(c["done"] + c["pruned"] + c["failed"] - self.bar.n)
            self.bar.set_postfix_str(self._summary(c))
            self.bar.write(line)
        else:
            self._say(line)

    def _summary(self, c: dict[str, int]) -> str:
        """The search's counts `c` (study.counts) and its best trial so far."""
        try:
            best = self.study.best_trial
            text = f"best {best.value:.3f} ({trial_name(best.number)})"
        except ValueError:
            text = "best -"
        return f"done {c['done']}, running {c['running']}, pruned {c['pruned']} | {text}"

    def close(self) -> None:
        self.bar.close()

"""`state_dict()` / `load_state_dict()` for objects whose checkpointed state is a few plain
attributes (the plateau schedule's counters, the stop rule's counters): the names are
listed once, in `SAVED`, and a checkpoint keeps them as a dict under those names."""
from __future__ import annotations


class SavedFields:
    SAVED: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.SAVED}

    def load_state_dict(self, state: dict) -> None:
        for name in self.SAVED:
            setattr(self, name, state[name])

"""What an Execution's spec.suspend / spec.cancel / spec.retry ask of its run, as a table."""

from __future__ import annotations

import pytest

from conveyor_operator.lifecycle import Action, Lifecycle, RunFacts, lifecycle_actions

CANCEL, RETRY, SUSPEND, RESUME = Action.CANCEL, Action.RETRY, Action.SUSPEND, Action.RESUME


@pytest.mark.parametrize(("spec", "run", "expected"), [
    # nothing asked
    (Lifecycle(), RunFacts("Running"), []),
    (Lifecycle(), RunFacts("Failed"), []),
    # cancel: only an open run, and it wins over suspend and retry
    (Lifecycle(cancel=True), RunFacts("Pending"), [CANCEL]),
    (Lifecycle(cancel=True, suspend=True), RunFacts("Running"), [CANCEL]),
    (Lifecycle(cancel=True), RunFacts("Cancelled"), []),  # applied twice: one action
    (Lifecycle(cancel=True), RunFacts("Succeeded"), []),
    (Lifecycle(cancel=True, retry=1), RunFacts("Failed"), []),  # no retry while cancelling
    # suspend / resume an open run
    (Lifecycle(suspend=True), RunFacts("Running"), [SUSPEND]),
    (Lifecycle(suspend=True), RunFacts("Pending"), [SUSPEND]),
    (Lifecycle(suspend=True), RunFacts("Running", suspended=True), []),  # already
    (Lifecycle(), RunFacts("Running", suspended=True), [RESUME]),
    (Lifecycle(suspend=True), RunFacts("Succeeded"), []),  # final: nothing to hold
    # retry: once per step of spec.retry, only from Failed or Cancelled
    (Lifecycle(retry=1), RunFacts("Failed"), [RETRY]),
    (Lifecycle(retry=1), RunFacts("Cancelled"), [RETRY]),
    (Lifecycle(retry=1), RunFacts("Failed", retries=1), []),  # the same apply again
    (Lifecycle(retry=1), RunFacts("Running", retries=1), []),  # the retry is running
    (Lifecycle(retry=2), RunFacts("Failed", retries=1), [RETRY]),  # raised again
    (Lifecycle(retry=1), RunFacts("Succeeded"), []),  # nothing failed
    (Lifecycle(retry=1), RunFacts("Running"), []),  # open: retried if it fails
    (Lifecycle(retry=1, suspend=True), RunFacts("Failed"), [RETRY]),  # starts suspended
    (Lifecycle(retry=1), RunFacts("Failed", suspended=True), [RETRY]),
])
def test_lifecycle_actions(spec: Lifecycle, run: RunFacts, expected: list[Action]) -> None:
    assert lifecycle_actions(spec, run) == expected

"""Auto Scaling checks AWS makes and moto does not: only an InService instance of the
group can enter Standby, and only a Standby one can exit it (AWS answers
`ValidationError`; moto moves an instance in any state, even one already moved, and two
responses or releases racing for one instance would both succeed). The check and the move
are one step, as in AWS."""

from __future__ import annotations

import threading
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend

_LOCK = threading.RLock()


def install() -> None:
    original = AutoScalingBackend.enter_standby_instances
    if getattr(original, "_firebreak", False):
        return

    def enter_standby_instances(self: AutoScalingBackend, group_name: str, instance_ids: list[str], should_decrement: bool) -> Any:
        with _LOCK:
            group = self.autoscaling_groups.get(group_name)
            if group is None:
                raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {group_name} not found")
            states = {s.instance.id: s.lifecycle_state for s in group.instance_states}
            for instance_id in instance_ids:
                if states.get(instance_id) != "InService":
                    raise ValidationError(f"The instance {instance_id} is not in InService.")
            return original(self, group_name, instance_ids, should_decrement)

    enter_standby_instances._firebreak = True  # type: ignore[attr-defined]
    AutoScalingBackend.enter_standby_instances = enter_standby_instances  # type: ignore[method-assign]

    original_exit = AutoScalingBackend.exit_standby_instances

    def exit_standby_instances(self: AutoScalingBackend, group_name: str, instance_ids: list[str]) -> Any:
        with _LOCK:
            group = self.autoscaling_groups.get(group_name)
            if group is None:
                raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {group_name} not found")
            states = {s.instance.id: s.lifecycle_state for s in group.instance_states}
            for instance_id in instance_ids:
                if states.get(instance_id) != "Standby":
                    raise ValidationError(f"The instance {instance_id} is not in Standby.")
            return original_exit(self, group_name, instance_ids)

    AutoScalingBackend.exit_standby_instances = exit_standby_instances  # type: ignore[method-assign]

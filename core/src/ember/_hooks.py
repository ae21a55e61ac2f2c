"""The typed façade the engine uses to fire hooks.

The engine never writes ``pm.hook.ember_x(**kwargs)``: it calls one method of :class:`Hooks`
per hook, with typed arguments. Each method first asks pluggy whether any plugin implements
the hook and returns at once when none does, so a per-task hook with no implementation costs a
fraction of a microsecond instead of a full pluggy call (``benchmarks/hook_call_overhead.py``
measures both). With ``EMBER_TRACE_HOOKS=1`` every call goes through pluggy so that it is
logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from ember.plugins import get_plugin_manager, merged_config_defaults

if TYPE_CHECKING:
    import argparse

    from ember.events import (
        BatchInfo,
        CheckpointInfo,
        JobInfo,
        OutputOperationInfo,
        ReceiverInfo,
        StageInfo,
        TaskInfo,
    )

__all__ = ["Hooks"]


class Hooks:
    """One method per hook of :mod:`ember.hookspecs`, over one plugin manager.

    :param pm: the plugin manager; by default a new one from
        :func:`ember.plugins.get_plugin_manager`.
    """

    __slots__ = (
        "_add_cli_commands",
        "_batch_completed",
        "_batch_started",
        "_batch_submitted",
        "_checkpoint_written",
        "_configure",
        "_context_started",
        "_context_stopped",
        "_job_completed",
        "_job_started",
        "_output_operation_completed",
        "_output_operation_started",
        "_receiver_error",
        "_receiver_started",
        "_receiver_stopped",
        "_report_header",
        "_stage_completed",
        "_stage_submitted",
        "_streaming_started",
        "_streaming_stopped",
        "_task_completed",
        "_task_started",
        "_tracing",
        "pm",
    )

    def __init__(self, pm: pluggy.PluginManager | None = None) -> None:
        self.pm = pm if pm is not None else get_plugin_manager()
        hook = self.pm.hook
        self._tracing = bool(getattr(self.pm, "tracing", False))
        # HookCaller objects live as long as the manager; keep them to skip attribute lookups.
        self._configure = hook.ember_configure
        self._add_cli_commands = hook.ember_add_cli_commands
        self._report_header = hook.ember_report_header
        self._context_started = hook.ember_context_started
        self._context_stopped = hook.ember_context_stopped
        self._job_started = hook.ember_job_started
        self._job_completed = hook.ember_job_completed
        self._stage_submitted = hook.ember_stage_submitted
        self._stage_completed = hook.ember_stage_completed
        self._task_started = hook.ember_task_started
        self._task_completed = hook.ember_task_completed
        self._checkpoint_written = hook.ember_checkpoint_written
        self._streaming_started = hook.ember_streaming_started
        self._streaming_stopped = hook.ember_streaming_stopped
        self._batch_submitted = hook.ember_batch_submitted
        self._batch_started = hook.ember_batch_started
        self._batch_completed = hook.ember_batch_completed
        self._output_operation_started = hook.ember_output_operation_started
        self._output_operation_completed = hook.ember_output_operation_completed
        self._receiver_started = hook.ember_receiver_started
        self._receiver_error = hook.ember_receiver_error
        self._receiver_stopped = hook.ember_receiver_stopped

    # ------------------------------------------------------------------ registration

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a hook plugin (a module or an object with ``@hookimpl`` methods).

        :param plugin: the plugin object.
        :param name: its name (default: chosen by pluggy).
        :returns: the name it was registered under, or ``None`` when that name is blocked
            (``EMBER_DISABLE_PLUGINS``).
        """
        return self.pm.register(plugin, name=name)

    def unregister(self, plugin: object) -> None:
        """Unregister a plugin registered with :meth:`register`.

        :param plugin: the plugin object.
        """
        self.pm.unregister(plugin)

    def implemented(self, hook_name: str) -> bool:
        """Whether any registered plugin implements the hook ``hook_name``.

        :param hook_name: the hook's full name, e.g. ``"ember_task_started"``.
        """
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    # ------------------------------------------------------------------ setup

    def config_defaults(self) -> dict[str, Any]:
        """Merged configuration defaults of every plugin (``ember_config_defaults``).

        :raises ember.errors.ConfigDefaultConflictError: two plugins disagree on a default.
        """
        return merged_config_defaults(self.pm)

    def configure(self, conf: Any) -> None:
        """Fire ``ember_configure(conf)`` (historic: later plugins also receive it).

        Call it once per plugin manager.
        """
        self._configure.call_historic(kwargs={"conf": conf})

    def add_cli_commands(self, subparsers: argparse._SubParsersAction) -> None:
        """Fire ``ember_add_cli_commands(subparsers)`` (historic)."""
        self._add_cli_commands.call_historic(kwargs={"subparsers": subparsers})

    def report_header(self, conf: Any) -> list[str]:
        """Collect ``ember_report_header(conf)`` lines, in plugin registration order."""
        caller = self._report_header
        if not (self._tracing or caller.get_hookimpls()):
            return []
        lines: list[str] = []
        for result in reversed(caller(conf=conf)):
            if isinstance(result, str):
                lines.append(result)
            else:
                lines.extend(str(line) for line in result)
        return lines

    # ------------------------------------------------------------------ lifecycle

    def context_started(self, context: Any) -> None:
        """Fire ``ember_context_started(context)``."""
        caller = self._context_started
        if self._tracing or caller.get_hookimpls():
            caller(context=context)

    def context_stopped(self, context: Any) -> None:
        """Fire ``ember_context_stopped(context)``."""
        caller = self._context_stopped
        if self._tracing or caller.get_hookimpls():
            caller(context=context)

    # ------------------------------------------------------------------ jobs, stages, tasks

    def job_started(self, job: JobInfo) -> None:
        """Fire ``ember_job_started(job)``."""
        caller = self._job_started
        if self._tracing or caller.get_hookimpls():
            caller(job=job)

    def job_completed(self, job: JobInfo) -> None:
        """Fire ``ember_job_completed(job)``."""
        caller = self._job_completed
        if self._tracing or caller.get_hookimpls():
            caller(job=job)

    def stage_submitted(self, stage: StageInfo) -> None:
        """Fire ``ember_stage_submitted(stage)``."""
        caller = self._stage_submitted
        if self._tracing or caller.get_hookimpls():
            caller(stage=stage)

    def stage_completed(self, stage: StageInfo) -> None:
        """Fire ``ember_stage_completed(stage)``."""
        caller = self._stage_completed
        if self._tracing or caller.get_hookimpls():
            caller(stage=stage)

    def task_started(self, task: TaskInfo) -> None:
        """Fire ``ember_task_started(task)`` (per task: free when nothing implements it)."""
        caller = self._task_started
        if self._tracing or caller.get_hookimpls():
            caller(task=task)

    def task_completed(self, task: TaskInfo) -> None:
        """Fire ``ember_task_completed(task)`` (per task: free when nothing implements it)."""
        caller = self._task_completed
        if self._tracing or caller.get_hookimpls():
            caller(task=task)

    # ------------------------------------------------------------------ streaming

    def streaming_started(self, streaming_context: Any) -> None:
        """Fire ``ember_streaming_started(streaming_context)``."""
        caller = self._streaming_started
        if self._tracing or caller.get_hookimpls():
            caller(streaming_context=streaming_context)

    def streaming_stopped(self, streaming_context: Any) -> None:
        """Fire ``ember_streaming_stopped(streaming_context)``."""
        caller = self._streaming_stopped
        if self._tracing or caller.get_hookimpls():
            caller(streaming_context=streaming_context)

    def batch_submitted(self, batch: BatchInfo) -> None:
        """Fire ``ember_batch_submitted(batch)``."""
        caller = self._batch_submitted
        if self._tracing or caller.get_hookimpls():
            caller(batch=batch)

    def batch_started(self, batch: BatchInfo) -> None:
        """Fire ``ember_batch_started(batch)``."""
        caller = self._batch_started
        if self._tracing or caller.get_hookimpls():
            caller(batch=batch)

    def batch_completed(self, batch: BatchInfo) -> None:
        """Fire ``ember_batch_completed(batch)``."""
        caller = self._batch_completed
        if self._tracing or caller.get_hookimpls():
            caller(batch=batch)

    def output_operation_started(self, op: OutputOperationInfo) -> None:
        """Fire ``ember_output_operation_started(op)``."""
        caller = self._output_operation_started
        if self._tracing or caller.get_hookimpls():
            caller(op=op)

    def output_operation_completed(self, op: OutputOperationInfo) -> None:
        """Fire ``ember_output_operation_completed(op)``."""
        caller = self._output_operation_completed
        if self._tracing or caller.get_hookimpls():
            caller(op=op)

    def receiver_started(self, receiver: ReceiverInfo) -> None:
        """Fire ``ember_receiver_started(receiver)``."""
        caller = self._receiver_started
        if self._tracing or caller.get_hookimpls():
            caller(receiver=receiver)

    def receiver_error(self, receiver: ReceiverInfo) -> None:
        """Fire ``ember_receiver_error(receiver)``."""
        caller = self._receiver_error
        if self._tracing or caller.get_hookimpls():
            caller(receiver=receiver)

    def receiver_stopped(self, receiver: ReceiverInfo) -> None:
        """Fire ``ember_receiver_stopped(receiver)``."""
        caller = self._receiver_stopped
        if self._tracing or caller.get_hookimpls():
            caller(receiver=receiver)

    def checkpoint_written(self, checkpoint: CheckpointInfo) -> None:
        """Fire ``ember_checkpoint_written(checkpoint)``."""
        caller = self._checkpoint_written
        if self._tracing or caller.get_hookimpls():
            caller(checkpoint=checkpoint)

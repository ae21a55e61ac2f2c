"""The hook specification: every event and cross-cutting extension point of ember.

This module is *the* contract between ember-core and hook plugins (entry-point group
``ember.hooks``). A hook plugin is a module (or an object) with functions named after these
hooks and decorated with :data:`ember.hookimpl`::

    # ember_prometheus/__init__.py
    from ember import hookimpl

    api_version = "1.0"

    @hookimpl
    def ember_job_completed(job):
        JOBS.labels(ok=job.succeeded).inc()

An implementation may accept any subset of a hook's arguments, by name, so new arguments can be
added to a hook without breaking existing plugins. New facts about an event become new fields
of the attrs objects in :mod:`ember.events`, never new positional arguments.

Every hook runs on the **driver**, in the thread that fires the event; hooks never run inside
workers. An exception raised by an implementation propagates to the caller (it is a bug in that
plugin), so implementations of the per-task hooks must be quick and must not raise.

The engine never calls ``pm.hook.x(...)`` directly; it goes through the typed façade in
``ember._hooks``, which skips the call entirely when no plugin implements the hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

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

__all__ = ["hookspec"]

#: Marks a function in this module as a hook specification of the ``ember`` project.
hookspec = pluggy.HookspecMarker("ember")


# =====================================================================================
# Setup: configuration and the command line
# =====================================================================================


@hookspec
def ember_config_defaults() -> dict[str, Any]:
    """Return default values for configuration keys this plugin defines.

    Called: once per plugin manager, when a configuration is built (by the engine's Conf,
    through ``ember.plugins.merged_config_defaults``), before any user setting is applied.

    Runs on: driver.

    Flags: none; every implementation is called and the returned dicts are merged. A key
    returned by two plugins with *different* values is an error that names both plugins
    (:class:`ember.errors.ConfigDefaultConflictError`): a plugin cannot silently replace a
    default of ember-core or of another plugin. Returning ``None`` contributes nothing.

    :returns: a dict mapping configuration keys (``"ember.<plugin>.<setting>"``, camelCase
        setting names as in Spark) to their default values, or ``None``.

    .. versionadded:: 0.1
    """


@hookspec(historic=True)
def ember_configure(conf: Any) -> None:
    """Inspect or adjust the configuration a context is about to use.

    Called: once per context, after defaults and user settings are merged and before anything
    starts (no executor, no thread, no job yet).

    Runs on: driver.

    Flags: historic: a plugin registered after the call still receives it, with the same
    ``conf``, at registration time. Results are ignored.

    :param conf: the context's configuration (an ``ember.conf.Conf``); a plugin may set its
        own keys on it, and should not change keys it does not own.

    .. versionadded:: 0.1
    """


@hookspec(historic=True)
def ember_add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``ember`` command line.

    Called: once per ``ember`` invocation whose command is not a built-in one (and for
    ``ember --help``), after the built-in commands ``plugins`` and ``version`` are added.

    Runs on: driver (the ``ember`` process).

    Flags: historic: a plugin registered after the call still receives it. Results are
    ignored. A name that is already taken is an error raised by :mod:`argparse`; the command
    line reports it and carries on without that plugin's commands.

    :param subparsers: the :mod:`argparse` subparsers object; call
        ``subparsers.add_parser(name, help=...)`` and give the parser a handler with
        ``parser.set_defaults(func=handler)``. The handler receives the parsed
        :class:`argparse.Namespace` and returns the exit code (``None`` means 0).

    .. versionadded:: 0.1
    """


@hookspec
def ember_report_header(conf: Any) -> list[str] | str | None:
    """Return lines that describe this plugin's setup, for headers and bug reports.

    Called: by ``ember version`` and by ``ember plugins`` (below the table).

    Runs on: driver.

    Flags: none; every implementation is called. Lines are shown in plugin registration
    order (ember-core's first).

    :param conf: the configuration in effect (an ``ember.conf.Conf``), or ``None`` when the
        ``ember`` command is run where no configuration could be built.
    :returns: a list of lines (or a single line) without trailing newlines, or ``None``.

    .. versionadded:: 0.1
    """


# =====================================================================================
# Lifecycle: contexts
# =====================================================================================


@hookspec
def ember_context_started(context: Any) -> None:
    """A context has started and can run jobs.

    Called: once per context, at the end of its construction, after its executor has been
    created and :func:`ember_configure` has been called.

    Runs on: driver.

    Flags: none; results are ignored.

    :param context: the new context (an ``ember.context.Context``).

    .. versionadded:: 0.1
    """


@hookspec
def ember_context_stopped(context: Any) -> None:
    """A context has stopped; it will run no more jobs.

    Called: once per context, from ``stop()``, after running jobs have ended and the executor
    has been shut down. Not called if the process dies.

    Runs on: driver.

    Flags: none; results are ignored.

    :param context: the stopped context (an ``ember.context.Context``).

    .. versionadded:: 0.1
    """


# =====================================================================================
# Jobs, stages and tasks of the batch engine
# =====================================================================================


@hookspec
def ember_job_started(job: JobInfo) -> None:
    """A job (the work one action such as ``collect`` started) has been submitted.

    Called: once per job, after its stages are planned and before its first stage is
    submitted.

    Runs on: driver, in the thread that called the action.

    Flags: none; results are ignored.

    :param job: the job; ``completion_time`` and ``error`` are ``None``.

    .. versionadded:: 0.1
    """


@hookspec
def ember_job_completed(job: JobInfo) -> None:
    """A job has ended, successfully or not.

    Called: once per job, after its last stage ended or as soon as it failed, before the
    action returns its result or raises.

    Runs on: driver, in the thread that called the action.

    Flags: none; results are ignored.

    :param job: the job; ``completion_time`` is set and ``error`` holds the error text when
        it failed (``job.succeeded`` tells which).

    .. versionadded:: 0.1
    """


@hookspec
def ember_stage_submitted(stage: StageInfo) -> None:
    """A stage's tasks are about to be handed to the executor.

    Called: once per stage that actually runs (stages whose shuffle output already exists
    are skipped and not reported), before its first task is launched.

    Runs on: driver.

    Flags: none; results are ignored.

    :param stage: the stage; ``completion_time`` and ``error`` are ``None``.

    .. versionadded:: 0.1
    """


@hookspec
def ember_stage_completed(stage: StageInfo) -> None:
    """A stage has ended: all its tasks succeeded, or it failed.

    Called: once per submitted stage, after its last task result arrived or when it failed.

    Runs on: driver.

    Flags: none; results are ignored.

    :param stage: the stage; ``completion_time`` is set and ``error`` holds the error text
        when it failed.

    .. versionadded:: 0.1
    """


@hookspec
def ember_task_started(task: TaskInfo) -> None:
    """One attempt of one task has been handed to the executor.

    Called: once per task attempt (a retried task is reported again with a higher
    ``attempt``). This hook fires per task, so implementations must be cheap.

    Runs on: driver (never in the worker that runs the task).

    Flags: none; results are ignored.

    :param task: the task attempt; ``status`` is ``"RUNNING"``.

    .. versionadded:: 0.1
    """


@hookspec
def ember_task_completed(task: TaskInfo) -> None:
    """One attempt of one task has ended.

    Called: once per task attempt, when its result or failure reaches the driver. This hook
    fires per task, so implementations must be cheap.

    Runs on: driver (never in the worker that ran the task).

    Flags: none; results are ignored.

    :param task: the task attempt; ``status`` is ``"SUCCESS"``, ``"FAILED"`` (it raised) or
        ``"LOST"`` (its worker died), ``finish_time`` is set and ``error`` holds the error
        text when it did not succeed.

    .. versionadded:: 0.1
    """


# =====================================================================================
# Streaming: reserved for the streaming layer.
#
# The DStream hooks (ember_streaming_started, ember_batch_submitted/started/completed,
# ember_output_operation_started/completed, ember_receiver_started/error/stopped,
# ember_checkpoint_written) are added here, below this banner, with the same docstring
# template. Add a façade method in ember/_hooks.py, a heading in docs/hooks.md and a
# test_hook_<name> test for each; tests/docs/test_hooks.py checks all three.
# =====================================================================================


@hookspec
def ember_streaming_started(streaming_context: Any) -> None:
    """Called when a StreamingContext started (its first batch is one batch interval away).

    Called: ``StreamingContext.start()``, after the scheduler and receivers started.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onStreamingStarted`` is called from this hook.

    :param streaming_context: the :class:`ember.streaming.StreamingContext`; ``streaming_context.startTime`` (ms) is set.

    .. versionadded:: 0.1
    """


@hookspec
def ember_streaming_stopped(streaming_context: Any) -> None:
    """Called when a StreamingContext stopped.

    Called: at the end of ``StreamingContext.stop()``, after the last batch it was going to run.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    :param streaming_context: the stopped :class:`ember.streaming.StreamingContext`.

    .. versionadded:: 0.1
    """


@hookspec
def ember_batch_submitted(batch: BatchInfo) -> None:
    """Called when a batch's jobs were generated and queued.

    Called: at each batch time, by the job generator, once the batch's RDDs and jobs exist.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onBatchSubmitted`` is called from this hook.

    :param batch: the :class:`ember.events.BatchInfo`; processing times are ``None``.

    .. versionadded:: 0.1
    """


@hookspec
def ember_batch_started(batch: BatchInfo) -> None:
    """Called when a batch's first output operation started.

    Called: in the job scheduler's thread, just before the batch's first job runs.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onBatchStarted`` is called from this hook.

    :param batch: the :class:`ember.events.BatchInfo` with ``processing_start_time`` set.

    .. versionadded:: 0.1
    """


@hookspec
def ember_batch_completed(batch: BatchInfo) -> None:
    """Called when every output operation of a batch finished (succeeded or failed).

    Called: in the job scheduler's thread, after the batch's last job.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onBatchCompleted`` is called from this hook.

    :param batch: the complete :class:`ember.events.BatchInfo`; ``batch.failed`` tells whether an output operation failed, and each failed one has ``failure_reason``.

    .. versionadded:: 0.1
    """


@hookspec
def ember_output_operation_started(op: OutputOperationInfo) -> None:
    """Called when one output operation of a batch started.

    Called: in the job scheduler's thread, before the job runs.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onOutputOperationStarted`` is called from this hook.

    :param op: the :class:`ember.events.OutputOperationInfo` with ``start_time`` set.

    .. versionadded:: 0.1
    """


@hookspec
def ember_output_operation_completed(op: OutputOperationInfo) -> None:
    """Called when one output operation of a batch finished.

    Called: in the job scheduler's thread, after the job ran (or raised).

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onOutputOperationCompleted`` is called from this hook.

    :param op: the :class:`ember.events.OutputOperationInfo` with ``end_time`` and, when it raised, ``failure_reason`` (type, message and traceback text).

    .. versionadded:: 0.1
    """


@hookspec
def ember_receiver_started(receiver: ReceiverInfo) -> None:
    """Called when a receiver started.

    Called: by the receiver's supervisor, after ``Receiver.onStart`` returned.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onReceiverStarted`` is called from this hook.

    :param receiver: the :class:`ember.events.ReceiverInfo`.

    .. versionadded:: 0.1
    """


@hookspec
def ember_receiver_error(receiver: ReceiverInfo) -> None:
    """Called when a receiver reported an error (or failed and is being restarted).

    Called: by the receiver's supervisor, from the receiver's thread.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onReceiverError`` is called from this hook.

    :param receiver: the :class:`ember.events.ReceiverInfo` with ``last_error_message``, ``last_error`` and ``last_error_time`` set.

    .. versionadded:: 0.1
    """


@hookspec
def ember_receiver_stopped(receiver: ReceiverInfo) -> None:
    """Called when a receiver stopped for good.

    Called: by the receiver's supervisor, after ``Receiver.onStop`` returned.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    The :class:`ember.streaming.StreamingListener` method ``onReceiverStopped`` is called from this hook.

    :param receiver: the :class:`ember.events.ReceiverInfo` with ``active`` false.

    .. versionadded:: 0.1
    """


@hookspec
def ember_checkpoint_written(checkpoint: CheckpointInfo) -> None:
    """Called when a streaming metadata checkpoint was written.

    Called: after each batch is generated and after each batch completes, once the
    checkpoint file is written (fsynced and renamed into place), when a checkpoint directory
    is set.

    Runs on: driver.

    Flags: none; results are ignored. Implementations must be quick: batches wait for them.

    :param checkpoint: the :class:`ember.events.CheckpointInfo` with the file's path and the
        batch time.

    .. versionadded:: 0.1
    """

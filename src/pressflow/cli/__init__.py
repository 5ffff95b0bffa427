"""The `pressflow` command: a thin CLI over the library, the flows and the store.

Errors are printed once, as one line a non-programmer can act on; `--debug` shows tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from . import messages
from ..core.config import Settings
from ..core.errors import PressflowError, one_line

app = typer.Typer(help="Describe an event once; publish it in every member language.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
review_app = typer.Typer(help="List, read, edit, approve and reject drafts.", no_args_is_help=True)
models_app = typer.Typer(help="Translation models: what is installed, what is missing, install more.",
                         no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(models_app, name="models")
users_app = typer.Typer(help="Reviewer accounts for the review page (`pressflow serve`).", no_args_is_help=True)
app.add_typer(users_app, name="users")
memory_app = typer.Typer(help="The translation memory: export and import it as TMX.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")

OutOption = typer.Option(None, "--out", help="Output folder (default: outputs/, or PRESSFLOW_OUT).")
_state: dict = {"debug": False, "countries": None}


def echo(message: str = "", err: bool = False) -> None:
    typer.echo(message, err=err)


def fail(message: str, code: int = 1) -> None:
    echo(f"error: {one_line(message)}", err=True)  # one line, whatever a message carried
    raise typer.Exit(code)


@contextmanager
def errors_as_lines() -> Iterator[None]:
    """Turn a PressflowError (and, without --debug, anything else) into one line and exit 1."""
    try:
        yield
    except typer.Exit:
        raise
    except PressflowError as exc:
        if _state["debug"]:
            raise
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the CLI edge: one readable line, details with --debug
        if _state["debug"]:
            raise
        if _from_database(exc):
            fail(database_error(exc))
        fail(f"{type(exc).__name__}: {exc} (run with --debug for details)")


def _from_database(exc: Exception) -> bool:
    if "sqlalchemy" not in sys.modules:  # nothing touched a database (and importing it costs time)
        return False
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


def database_error(exc: Exception) -> str:
    """One line for an error the database raised: its own first line, never the SQL statement
    and its parameters (SQLAlchemy's message holds both, over many lines, with record text)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"the draft store refused the change: {type(cause).__name__}: {first} (run with --debug for details)"


def settings_for(out: Optional[Path]) -> Settings:
    return Settings().with_out(out)


@app.callback()
def main_options(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and Prefect logs."),
                 countries: Optional[Path] = typer.Option(None, "--countries", help="Country-to-language registry (YAML).")
                 ) -> None:
    _state["debug"] = debug
    _state["countries"] = countries
    _state["said_not_recorded"] = False
    # pressflow's log lines: the summary printed at the end says what was skipped and failed;
    # the lines themselves (with tracebacks) on the terminal only with --debug. In a Prefect run
    # they go to the run's logs whatever this says (pressflow.flows).
    logger = logging.getLogger("pressflow")
    if debug:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.addHandler(logging.NullHandler())  # not Python's last-resort printing of warnings
        # nor any library's: a warning logged where the command already fails (psycopg's "error
        # ignored terminating <psycopg.Pipeline [BAD]>" when the server is gone) is no second line
        # beside the one error line; --debug shows them
        root = logging.getLogger()
        if not any(isinstance(handler, logging.NullHandler) for handler in root.handlers):
            root.addHandler(logging.NullHandler())
    # Prefect's own settings, for commands that run through a Prefect server: no telemetry, and
    # its console lines only with --debug (its logs still reach the server).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not debug:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def settings_for(out: Optional[Path]) -> Settings:
    """The command's settings: the environment's, with its --out and --countries."""
    settings = Settings().with_out(out)
    if _state.get("countries"):
        settings = settings.model_copy(update={"countries_file": _state["countries"]})
    return settings


# --- prepare / publish / run ------------------------------------------------------------------
#
# With a Prefect server configured (PREFECT_API_URL, or the active Prefect profile), `prepare`
# and `publish` submit a run of their deployment (prefect.yaml) and follow it here: a worker
# does the work, the terminal shows the run's states and logs, the exit code follows its final
# state. `--local` runs the flow in this process instead (still recorded in the server). Without
# a server they run the same driver directly in this process: Prefect is not even imported, the
# command costs what its work costs (bench/cli.py), and one line says what is not recorded.
# Nothing is started that could outlive the command.


def _through_prefect() -> str | None:
    from ..core.config import prefect_api_url

    return prefect_api_url()


def _recorded(state, api_url: str) -> None:
    """Say where the run is recorded: its name, final state and page in the Prefect UI."""
    run_id = state.state_details.flow_run_id
    ui = api_url.rstrip("/").removesuffix("/api")
    echo(f"recorded in Prefect ({state.name}): {ui}/runs/flow-run/{run_id}", err=True)


NOT_RECORDED = ("note: ran here without Prefect (no server configured): no run, state, logs or artifacts are "
                "recorded, and no worker was used; set PREFECT_API_URL to have them")


def _say_not_recorded() -> None:
    if not _state.get("said_not_recorded"):
        _state["said_not_recorded"] = True
        echo(NOT_RECORDED, err=True)


LocalOption = typer.Option(False, "--local", help="With a Prefect server: run the flow in this process "
                           "instead of submitting a run of the deployment to a worker.")


def _submit(deployment: str, parameters: dict) -> bool:
    """Run the deployment on a worker, following it here; True when it completed without failures."""
    from ..flows.submit import submit  # imports Prefect: only with a server configured

    if _state.get("countries"):
        fail("--countries applies to runs in this process: add --local, or set PRESSFLOW_COUNTRIES on the worker")
    outcome = submit(deployment, parameters, lambda line: echo(line, err=True), _through_prefect())
    echo(f"flow run {outcome.name} ended {outcome.state}" + (f": {outcome.message}" if outcome.message else ""))
    return outcome.ok


def _prepare_report(paths: list[Path], settings: Settings, progress):
    from ..prepare import pipeline

    api_url = _through_prefect()
    if not api_url:
        from ..translate.runners import runner_name

        if runner_name(settings) != "threads":
            fail(f"the {runner_name(settings)} task runner (PRESSFLOW_TASK_RUNNER, PRESSFLOW_DASK_ADDRESS) runs "
                 "through the Prefect flows: set PREFECT_API_URL to a running Prefect server")
        return pipeline.prepare_sources(settings, paths=paths, steps=pipeline.Steps(progress)), False
    from ..flows import using_settings
    from ..flows.prepare import prepare_flow
    from ..translate.runners import task_runner

    pipeline.on_progress(progress)
    with using_settings(settings):
        flow = prepare_flow.with_options(task_runner=task_runner(settings))
        state = flow(paths=[str(p.absolute()) for p in paths], out_dir=str(settings.out_dir), return_state=True)
    _recorded(state, api_url)
    return state.result(), True


def _run_prepare(paths: list[Path], settings: Settings):
    """Prepare and print the summary; returns the report (`report.ok`: everything went through)."""
    from ..prepare import pipeline

    pipeline.on_wait(lambda message: echo(message, err=True))
    with _progress_bar() as bar:
        report, recorded = _prepare_report(paths, settings, bar)
    for error in report.errors:
        echo(f"error: {one_line(str(error))}", err=True)
    for slug, info in sorted(report.releases.items()):
        echo(messages.prepared(slug, info))
    _explain_skips(report.skipped, report.failed)
    stats = report.stats
    echo(f"{report.drafts_added} drafts stored; {stats.segments} segments, {stats.unique} unique, "
         f"{stats.from_memory} from memory, {stats.translated} machine-translated")
    if not recorded:
        _say_not_recorded()
    if report.notices_waiting and not recorded and _state["debug"]:
        echo(f"{report.notices_waiting} notice(s) to reviewers wait in the store for a run against a Prefect "
             "server (kept 7 days)", err=True)
    return report


def _explain_skips(skipped: dict[str, dict[str, str]], failed: dict[str, dict[str, str]]) -> None:
    """Say once (not once per release and language) which models are missing and how to fix it."""
    missing = sorted({lang for langs in skipped.values() for lang in langs})
    if missing:
        echo(f"skipped languages without an installed translation model: {', '.join(missing)}", err=True)
        echo("  install one with `pressflow models install en LANG` (online) or "
             "`pressflow models install FILE.argosmodel`, then run prepare again; "
             "everything else went ahead.", err=True)
    for slug, langs in sorted(failed.items()):
        for lang, reason in sorted(langs.items()):
            echo(f"error: {slug}: {lang}: {one_line(reason)}", err=True)


@contextmanager
def _progress_bar():
    """A progress bar of translated segments on a terminal; nothing when output is piped."""
    if not sys.stderr.isatty():
        yield lambda what, count, verb="translating": None
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        tasks: dict[str, int] = {}

        def advance(what: str, count: int, verb: str = "translating") -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(f"{verb} {what}", total=None)
            progress.advance(tasks[what], count)

        yield advance


def _publish_report(settings: Settings):
    from .. import publish as publishing

    api_url = _through_prefect()
    if not api_url:
        return publishing.publish(settings), False
    from ..flows import using_settings
    from ..flows.publish import publish_flow

    with using_settings(settings):
        state = publish_flow(out_dir=str(settings.out_dir), return_state=True)
    _recorded(state, api_url)
    return state.result(), True


def _run_publish(settings: Settings, already_said: dict[str, dict[str, str]] | None = None) -> bool:
    """Publish and print the summary; returns whether every approved language was published.

    `already_said`: failures this run's prepare printed, not repeated (publish reports them too).
    """
    from .. import publish as publishing

    said = already_said or {}
    with _progress_bar() as bar:
        publishing.on_progress(lambda slug: bar("releases", 1, verb="publishing"))
        report, recorded = _publish_report(settings)
    for slug, langs in sorted(report.releases.items()):
        echo(f"published {slug}: {', '.join(langs)}")
    for slug, langs in sorted(report.waiting.items()):
        echo(f"awaiting review {slug}: {', '.join(langs)}: newer text waits for a reviewer; "
             "what was approved before stays published")
    for line in messages.embargoed(settings, report.embargoed):
        echo(line)
    for slug in report.withdrawn:
        echo(f"withdrawn {slug}: under embargo again; its pages and outbound files were removed")
    for slug, langs in sorted(report.failed.items()):
        for lang, reason in sorted(langs.items()):
            if reason != said.get(slug, {}).get(lang):
                echo(f"error: {slug}: {lang}: not published: {one_line(reason)}", err=True)
    for slug, langs in sorted(report.kept.items()):
        echo(f"kept {slug}: {', '.join(langs)}: the version published before stays online", err=True)
    for warning in report.warnings:
        echo(f"warning: {warning}", err=True)
    echo(f"{report.files_written} files written, {report.files_unchanged} unchanged in {settings.out_dir}")
    if not recorded:
        _say_not_recorded()
    return not report.failed


def _auto_approve(settings: Settings, slugs: list[str]) -> None:
    """Approve the drafts of these releases, and name the QA flags nobody looked at."""
    from ..drafts import service

    approval = service.approve_releases(settings, slugs, reviewer="auto-approve")
    echo(f"approved {approval.count} drafts (--auto-approve)")
    for (slug, lang), kinds in sorted(approval.flags.items()):
        flags = "; ".join(f"{kind} ({', '.join(channels)})" for kind, channels in kinds.items())
        echo(f"warning: {slug}: {lang}: approved with QA flags: {flags}", err=True)
    for line in approval.left:
        echo(f"warning: not approved: {line}", err=True)


@app.command()
def prepare(paths: list[Path] = typer.Argument(..., help="Event records (YAML/JSON files or folders)."),
            out: Optional[Path] = OutOption, local: bool = LocalOption) -> None:
    """Validate records, render releases and posts, translate them, and store drafts for review."""
    with errors_as_lines():
        settings = settings_for(out)
        if _through_prefect() and not local:
            ok = _submit("pressflow-prepare/prepare", {"paths": [str(p.absolute()) for p in paths],
                                                       "out_dir": str(settings.out_dir.absolute())})
        else:
            ok = _run_prepare(paths, settings).ok
        if not ok:
            raise typer.Exit(1)


ChannelsOption = typer.Option(None, "--channels", help="The channels file (default: PRESSFLOW_CHANNELS; "
                              "docs/channels.md).")


@app.command()
def publish(out: Optional[Path] = OutOption, channels: Optional[Path] = ChannelsOption,
            no_deliver: bool = typer.Option(False, "--no-deliver", help="Do not deliver to the configured "
                                            "channels after publishing."),
            local: bool = LocalOption) -> None:
    """Publish approved drafts: feeds, pages and outbound files; then deliver them to the
    channels configured (--channels or PRESSFLOW_CHANNELS), unless --no-deliver."""
    with errors_as_lines():
        settings = settings_for(out)
        if _through_prefect() and not local:
            published = _submit("pressflow-publish/publish", {"out_dir": str(settings.out_dir.absolute())})
        else:
            published = _run_publish(settings)
        delivered = True
        if not no_deliver and channels_file(channels) is not None:
            delivered = _run_deliver(settings, channels)
        if not (published and delivered):
            raise typer.Exit(1)


@app.command()
def run(paths: list[Path] = typer.Argument(..., help="Event records (YAML/JSON files or folders)."),
        out: Optional[Path] = OutOption,
        auto_approve: bool = typer.Option(False, "--auto-approve", help="Approve the drafts of these records "
                                          "without review (other releases keep waiting for theirs)."),
        deliver: bool = typer.Option(False, "--deliver", help="Then deliver to the configured channels "
                                     "(never without this option)."),
        channels: Optional[Path] = ChannelsOption) -> None:
    """Prepare, then publish, in one go (and deliver, only with --deliver). In this process,
    recorded in Prefect when a server is configured."""
    with errors_as_lines():
        settings = settings_for(out)
        prepared = _run_prepare(paths, settings)
        if auto_approve:
            _auto_approve(settings, sorted(prepared.releases))
        published = _run_publish(settings, already_said=prepared.failed)
        delivered = True
        if deliver:
            if channels_file(channels) is None:
                fail("--deliver: no channels configured (--channels FILE or PRESSFLOW_CHANNELS)")
            delivered = _run_deliver(settings, channels)
        if not (prepared.ok and published and delivered):
            raise typer.Exit(1)


# --- Prefect automations (automations/*.yaml) ----------------------------------------------------

automations_app = typer.Typer(help="The Prefect automations of automations/*.yaml.", no_args_is_help=True)
app.add_typer(automations_app, name="automations")


@automations_app.command("install")
def automations_install(
        webhook: Optional[str] = typer.Option(None, "--webhook", help="The Webhook block (name or id) the "
                                              "notices go to (`prefect block create webhook`)."),
        folder: Path = typer.Option(Path("automations"), "--dir", help="The folder of automation files.")) -> None:
    """Create or update every automation of automations/*.yaml on the Prefect server, by name:
    running it again changes nothing."""
    with errors_as_lines():
        if not _through_prefect():
            fail("no Prefect server configured: set PREFECT_API_URL (automations live in the server)")
        from ..flows.automations import install

        done = install(folder, webhook)
        for name in done.created:
            echo(f"created {name}")
        for name in done.updated:
            echo(f"updated {name}")
        if done.removed_duplicates:
            echo(f"removed {done.removed_duplicates} duplicate automation(s) of the same names")


# --- delivery (docs/channels.md) ---------------------------------------------------------------

channels_app = typer.Typer(help="Delivery to social accounts and mailing lists: status, settle unknowns.",
                           no_args_is_help=True)
app.add_typer(channels_app, name="channels")


def channels_file(option: Optional[Path]) -> Optional[Path]:
    from ..deliver.config import channels_file as configured

    return configured(option)


def _run_deliver(settings: Settings, channels: Optional[Path], release: Optional[str] = None) -> bool:
    from ..deliver.config import load_channels
    from ..deliver.runner import deliver as deliver_due

    path = channels_file(channels)
    if path is None:
        fail("no channels configured: give --channels FILE or set PRESSFLOW_CHANNELS (docs/channels.md)")
    report = deliver_due(settings, load_channels(path), release=release)
    for row in report.sent:
        echo(f"sent {row.release} {row.language} {row.account} {row.kind} {row.part}: {row.url or row.remote_id}")
    for row in report.deleted:
        echo(f"deleted {row.release} {row.language} {row.account} {row.kind} {row.part}")
    for row in report.postponed:
        echo(f"postponed {row.id} {row.release} {row.language} {row.account}: until {row.retry_at}")
    for row in report.failed:
        echo(f"error: delivery {row.id} {row.release} {row.language} {row.account}: {row.last_error}", err=True)
    for row in report.unknown:
        echo(f"unknown: delivery {row.id} {row.release} {row.language} {row.account}: {row.last_error}; "
             f"settle it with `pressflow channels resolve {row.id} --sent URL|--not-sent`", err=True)
    for line in report.errors:
        echo(f"error: {line}", err=True)
    echo(f"delivery: {report.summary()}")
    return report.ok


@app.command("deliver")
def deliver_command(out: Optional[Path] = OutOption, channels: Optional[Path] = ChannelsOption,
                    release: Optional[str] = typer.Option(None, "--release", help="Only this release (slug).")
                    ) -> None:
    """Send what publish put out to the configured channels, once; take back withdrawn releases."""
    with errors_as_lines():
        if not _run_deliver(settings_for(out), channels, release):
            raise typer.Exit(1)


@channels_app.command("status")
def channels_status(out: Optional[Path] = OutOption,
                    release: Optional[str] = typer.Option(None, "--release", help="Only this release (slug).")
                    ) -> None:
    """Every delivery: id, release, language, account, part, state, remote URL."""
    from ..deliver.ledger import Ledger

    with errors_as_lines():
        rows = Ledger(settings_for(out).db_url).rows(release=release)
        for row in rows:
            where = row.url or row.remote_id or ""
            note = f"  ({one_line(row.last_error)})" if row.last_error and row.state != "sent" else ""
            echo(f"{row.id}\t{row.release}\t{row.language}\t{row.account}\t{row.kind}:{row.part}\t"
                 f"{row.state}\t{where}{note}")
        if not rows:
            echo("no deliveries")


@channels_app.command("resolve")
def channels_resolve(delivery_id: int = typer.Argument(..., help="The delivery's id (`channels status`)."),
                     sent: Optional[str] = typer.Option(None, "--sent", help="It was sent: its URL."),
                     not_sent: bool = typer.Option(False, "--not-sent", help="It was not sent: send it again."),
                     out: Optional[Path] = OutOption) -> None:
    """Settle a delivery whose outcome is unknown."""
    from ..deliver.runner import resolve

    with errors_as_lines():
        if (sent is None) == (not not_sent):
            fail("give one of --sent URL or --not-sent")
        row = resolve(settings_for(out), delivery_id, sent=sent, not_sent=not_sent)
        echo(f"delivery {row.id}: {row.state}")


# --- review --------------------------------------------------------------------------------


@review_app.command("list")
def review_list(out: Optional[Path] = OutOption,
                status: Optional[str] = typer.Option("pending", help="pending (also: draft), approved, rejected, published, superseded, or 'all'."),
                lang: Optional[str] = typer.Option(None, help="Only this language."),
                channel: Optional[str] = typer.Option(None, help="Only this channel (release, x, mastodon, ...)."),
                release: Optional[str] = typer.Option(None, help="Only this release (slug)."),
                flag: Optional[str] = typer.Option(None, help="Only drafts with this QA check (e.g. numbers_differ; "
                                                   "'any' or 'none'); `review show N` explains each.")) -> None:
    """List drafts, oldest first."""
    from ..drafts import service

    with errors_as_lines():
        rows = service.list_rows(settings_for(out), status=None if status == "all" else status, lang=lang,
                                channel=channel, slug=release, flag=flag)
        if not rows:
            echo("no drafts match")
        for row in rows:
            echo(row)


@review_app.command("show")
def review_show(draft_id: int, out: Optional[Path] = OutOption) -> None:
    """Show a draft beside its source text."""
    from ..drafts import service

    with errors_as_lines():
        echo(service.show(settings_for(out), draft_id))


@review_app.command("approve")
def review_approve(draft_ids: list[int] = typer.Argument(None, help="Draft ids (see `review list`)."),
                   all_pending: bool = typer.Option(False, "--all", help="Approve every pending draft (filters apply)."),
                   lang: Optional[str] = typer.Option(None, help="With --all: only this language."),
                   release: Optional[str] = typer.Option(None, help="With --all: only this release."),
                   reviewer: str = typer.Option(os.environ.get("USER", "reviewer"), help="Your name, for the record."),
                   out: Optional[Path] = OutOption) -> None:
    """Approve drafts for publishing."""
    from ..drafts import service

    with errors_as_lines():
        settings = settings_for(out)
        languages = _languages_of(settings, reviewer)
        if all_pending:
            count = service.approve_all(settings, reviewer=reviewer, lang=lang, slug=release, languages=languages)
        elif draft_ids:
            count = service.decide(settings, {i: service.Seen() for i in draft_ids}, "approved", reviewer=reviewer,
                                  languages=languages)
        else:
            fail("give draft ids, or --all")
        echo(f"approved {count} draft(s)")


def _languages_of(settings: Settings, reviewer: str) -> list[str] | None:
    """The languages of the reviewer's account, if the name is one (None: no account, no bound).
    The name follows the audit trail's rule first: no look-alike of an account, no system name."""
    from ..drafts import reviewers

    reviewers.new_name(settings.db_url, reviewer, "--reviewer name")
    return reviewers.languages_of(settings.db_url, reviewer)


@review_app.command("reject")
def review_reject(draft_ids: list[int] = typer.Argument(..., help="Draft ids."),
                  reason: str = typer.Option(..., "--reason", help="Why, for the translator."),
                  reviewer: str = typer.Option(os.environ.get("USER", "reviewer"), help="Your name."),
                  out: Optional[Path] = OutOption) -> None:
    """Reject drafts: they will not be published."""
    from ..drafts import service

    with errors_as_lines():
        settings = settings_for(out)
        count = service.decide(settings, {i: service.Seen() for i in draft_ids}, "rejected", reviewer=reviewer,
                              reason=reason, languages=_languages_of(settings, reviewer))
        echo(f"rejected {count} draft(s)")


@review_app.command("edit")
def review_edit(draft_id: int,
                text_file: Optional[Path] = typer.Option(None, "--file", help="Read the new text from this file "
                                                         "(default: open $EDITOR)."),
                reviewer: str = typer.Option(os.environ.get("USER", "reviewer"), help="Your name."),
                out: Optional[Path] = OutOption) -> None:
    """Replace a draft's text (saved as a new revision; edited sentences feed the translation memory)."""
    from ..drafts import service

    with errors_as_lines():
        settings = settings_for(out)
        current = service.get_text(settings, draft_id)
        if text_file:
            new_text = service.read_edit_file(text_file)
        else:
            new_text = _edit_in_editor(current["text"])
            if new_text is None:
                echo("no change")
                return
        saved = service.edit(settings, draft_id, new_text, author=reviewer, expected_revision=current["revision"],
                            languages=_languages_of(settings, reviewer))
        if saved.revision is None:
            echo("no change")
            return
        learned = f"; {saved.learned} edited sentence(s) learned" if saved.learned else ""
        flags = ", ".join(dict.fromkeys(flag["kind"] for flag in saved.qa)) or "none"
        echo(f"saved draft {draft_id} revision {saved.revision}{learned}; QA now: {flags}")


def _edit_in_editor(text: str) -> str | None:
    """The text as $VISUAL/$EDITOR left it, or None when it was saved unchanged. Click's editor
    (typer has no `edit` of its own since 0.2x); an editor that fails is one line."""
    import click

    try:
        return click.edit(text, extension=".md", require_save=True)
    except click.ClickException as exc:
        fail(f"the editor ({os.environ.get('VISUAL') or os.environ.get('EDITOR') or 'default'}) failed: "
             f"{exc.format_message()}; nothing was saved (or give the text with --file)")


# --- exchange: XLIFF with agencies and CAT tools, TMX for the memory ------------------------


@review_app.command("export")
def review_export(release: str = typer.Option(..., "--release", help="The release (slug)."),
                  lang: str = typer.Option(..., "--lang", help="The target language."),
                  channel: Optional[str] = typer.Option(None, "--channel", help="Only this channel (release, x, ...)."),
                  output: Path = typer.Option(..., "-o", "--output", help="The XLIFF file to write (.xlf)."),
                  out: Optional[Path] = OutOption) -> None:
    """Export a release's drafts in one language as XLIFF 1.2, for a translator or CAT tool."""
    from ..exchange import xliff

    with errors_as_lines():
        units = xliff.export(settings_for(out), output, slug=release, lang=lang, channel=channel)
        echo(f"wrote {units} sentence(s) of {release} in {lang} to {output}")


@review_app.command("import")
def review_import(file: Path = typer.Argument(..., help="An XLIFF file exported by `review export`."),
                  reviewer: str = typer.Option(os.environ.get("USER", "reviewer"), "--reviewer",
                                               help="Whose translations these are, for the record."),
                  out: Optional[Path] = OutOption) -> None:
    """Take a translated XLIFF file back: each changed sentence becomes a revision by the reviewer."""
    from ..exchange import xliff

    with errors_as_lines():
        report = xliff.import_file(settings_for(out), file, reviewer=reviewer)
        for line in report.refused:
            echo(f"error: {file}: {line}", err=True)
        for line in report.conflicts:
            echo(f"conflict: {file}: {line}", err=True)
        echo(f"imported {report.sentences} changed sentence(s) into {len(report.saved)} draft(s); "
             f"{report.unchanged} unchanged" + (f"; {len(report.refused)} refused" if report.refused else "")
             + (f"; {len(report.conflicts)} conflict(s)" if report.conflicts else ""))
        if report.refused or report.conflicts:
            raise typer.Exit(1)


@memory_app.command("export")
def memory_export(output: Path = typer.Option(..., "-o", "--output", help="The TMX file to write."),
                  format: str = typer.Option("tmx", "--format", help="tmx (TMX 1.4b), the only format."),
                  source: Optional[str] = typer.Option(None, "--source", help="Source language (default: en)."),
                  target: Optional[str] = typer.Option(None, "--target", help="Only this target language."),
                  out: Optional[Path] = OutOption) -> None:
    """Export the translation memory as TMX 1.4b."""
    from ..exchange import tmx

    with errors_as_lines():
        if format != "tmx":
            fail(f"--format {format}: only tmx is supported")
        count = tmx.export(settings_for(out), output, source=source, target=target)
        echo(f"wrote {count} memory entr{'y' if count == 1 else 'ies'} to {output}")


@memory_app.command("import")
def memory_import(file: Path = typer.Argument(..., help="A TMX file."),
                  origin: str = typer.Option("human", "--as", help="human (reviewed: the next prepare uses "
                                             "them) or machine (offered as suggestions only)."),
                  replace_human: bool = typer.Option(False, "--replace-human", help="Replace reviewers' entries "
                                                     "the file has other text for (default: keep them, listed)."),
                  out: Optional[Path] = OutOption) -> None:
    """Add a TMX file's translations to the memory."""
    from ..exchange import tmx

    with errors_as_lines():
        result = tmx.import_file(settings_for(out), file, origin=origin, replace_human=replace_human)
        for line in result.refused:
            echo(f"error: {file}: {line}", err=True)
        for line in result.conflicts:
            echo(f"conflict: {line}", err=True)
        skipped = f"; {result.skipped} unit(s) without both languages skipped" if result.skipped else ""
        refused = f"; {len(result.refused)} refused" if result.refused else ""
        kept = f"; {len(result.conflicts)} reviewer's entr{'y' if len(result.conflicts) == 1 else 'ies'} kept" \
            if result.conflicts else ""
        echo(f"imported {result.entries} entr{'y' if result.entries == 1 else 'ies'} as {origin}{skipped}{refused}{kept}")
        if result.refused or result.conflicts:
            raise typer.Exit(1)


# --- models --------------------------------------------------------------------------------


@models_app.command("list")
def models_list(out: Optional[Path] = OutOption) -> None:
    """Installed language pairs, and the member languages that still lack a model."""
    from ..translate.models import find_route, scan
    from ..core.errors import ModelMissingError

    with errors_as_lines():
        settings = settings_for(out)
        catalog = scan()
        models = catalog.models
        lines, warnings = catalog.lines()
        for line in lines:
            echo(line)
        for line in warnings:
            echo(line, err=True)
        if not models:
            echo("no translation models installed")
        wanted = _configured_languages(settings)
        missing = []
        for lang in wanted:
            try:
                find_route(settings.source_language, lang, models)
            except ModelMissingError:
                missing.append(lang)
        if missing:
            echo(f"missing for member languages: {', '.join(sorted(missing))}")
            echo(f"install with: pressflow models install {settings.source_language} LANG")


def _configured_languages(settings: Settings) -> list[str]:
    """The languages of every country in the registry (PRESSFLOW_COUNTRIES or the packaged one),
    then the target languages of every release in the store, without the source language."""
    from ..core import db
    from ..drafts import store
    from ..records.languages import load_overrides, target_languages

    registry = settings.countries_file
    langs = target_languages(list(load_overrides(registry)), source=settings.source_language, registry=registry)
    if not _store_exists(settings):
        return langs
    with db.session_scope(settings.db_url) as session:
        for release in store.all_releases(session):
            record = release.record or {}
            langs += target_languages(record.get("countries", []), record.get("languages"),
                                      source=settings.source_language, registry=settings.countries_file)
    return list(dict.fromkeys(langs))


def _store_exists(settings: Settings) -> bool:
    # Opening a SQLite store creates it (and its folders): listing models must not do that.
    url = settings.db_url
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


@models_app.command("install")
def models_install(args: list[str] = typer.Argument(..., help="SOURCE TARGET (from the Argos index), or FILE.argosmodel."),
                   replace: bool = typer.Option(False, "--replace", help="Take the place of the package installed "
                                                "in the same folder or for the same pair.")) -> None:
    """Install a translation model from the Argos index (needs internet) or from a file."""
    from ..translate.models import install_file, install_pair

    with errors_as_lines():
        if len(args) == 1:
            model = install_file(Path(args[0]), replace=replace)
        elif len(args) == 2:
            model = install_pair(args[0], args[1])
        else:
            fail("give SOURCE TARGET (e.g. `en es`) or one .argosmodel file")
        echo(f"installed {model.source} -> {model.target} ({model.version}) in {model.path}")


@models_app.command("build-test")
def models_build_test(pairs: list[str] = typer.Argument(..., help="Pairs like en:es en:zh."),
                      work_dir: Path = typer.Option(Path("build/test-models"), help="Where to keep the built files."),
                      size: str = typer.Option("tiny", help="tiny (tests) or base (benchmarks: Transformer base)."),
                      install: bool = typer.Option(True, help="Install them into ARGOS_PACKAGES_DIR.")) -> None:
    """Build small genuine Argos packages with random weights, to dry-run translation offline.

    Their output is gibberish by design: they exercise the pipeline, not the language.
    """
    from ..translate import testmodel

    with errors_as_lines():
        for pair in pairs:
            source, _, target = pair.partition(":")
            if not target:
                fail(f"'{pair}' is not a pair; write SOURCE:TARGET, e.g. en:es")
            path = testmodel.build_package(source, target, work_dir, size=size)
            if install:
                testmodel.install_package(path)
            echo(f"{'installed' if install else 'built'} {source} -> {target}: {path}")


# --- users (review page accounts) ---------------------------------------------------------


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="The reviewer's sign-in name."),
              languages: str = typer.Option("", "--languages", help="Languages they may review, e.g. es,zh "
                                            "(default: all)."),
              password_file: Optional[Path] = typer.Option(None, "--password-file", help="Read the password from "
                                                           "this file (else PRESSFLOW_NEW_PASSWORD, else a prompt)."),
              out: Optional[Path] = OutOption) -> None:
    """Create a reviewer account (or change its password and languages)."""
    from ..drafts import reviewers

    with errors_as_lines():
        if password_file:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        else:
            password = os.environ.get("PRESSFLOW_NEW_PASSWORD") or typer.prompt(
                f"Password for {name}", hide_input=True, confirmation_prompt=True)
        langs = reviewers.parse_languages(languages)
        created = reviewers.add_user(settings_for(out).db_url, name, password, langs)
        echo(f"{'created' if created else 'updated'} reviewer {name} ({', '.join(langs) or 'all languages'})")


@users_app.command("list")
def users_list(out: Optional[Path] = OutOption) -> None:
    """List reviewer accounts and their languages."""
    from ..drafts import reviewers

    with errors_as_lines():
        accounts = reviewers.list_users(settings_for(out).db_url)
        for name, langs in accounts:
            echo(f"{name}  {', '.join(langs) or 'all languages'}")
        if not accounts:
            echo("no reviewer accounts; add one with `pressflow users add NAME`")


@users_app.command("remove")
def users_remove(name: str, out: Optional[Path] = OutOption) -> None:
    """Remove a reviewer account (their past revisions keep their name)."""
    from ..drafts import reviewers

    with errors_as_lines():
        reviewers.remove_user(settings_for(out).db_url, name)
        echo(f"removed reviewer {name}")


@app.command()
def serve(out: Optional[Path] = OutOption,
          host: str = typer.Option("127.0.0.1", help="Address to listen on (default: this machine only)."),
          port: int = typer.Option(8000, help="Port.")) -> None:
    """Start the review web page, and serve the published feeds and pages."""
    with errors_as_lines():
        from ..review_app import run_server  # the review page (issue: review web app)

        run_server(settings_for(out), host=host, port=port)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

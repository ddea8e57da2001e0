"""`flask --app <app> progress ...`: the extension's commands, on a host's app as on ours.

A mount adds the `progress` group to its app's CLI unless the app has a command of that name
(its own, or the standalone app's group, which has every command of this one and more).
"""
import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from . import doctor

GROUP = "progress"
MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}

progress_cli = AppGroup(GROUP, help="Course progress: check the mounts of this app.")


def register(app):
    """Add our group to `app`'s CLI, once (two mounts share it), and never over a host's own."""
    if GROUP not in app.cli.commands:
        app.cli.add_command(progress_cli)


@click.command("doctor")
@click.option("--mount", "name", metavar="NAME", help="Check only the mount of this name (default: every mount).")
@click.option("--course", "course_id", metavar="ID", help="Check this course (default: one the catalog has).")
@with_appcontext
def doctor_command(name, course_id):
    """Check each mount against its database; say what to change. Exit 1 if one cannot serve."""
    mounts = current_app.extensions.get("progress", {})
    if name is not None:
        if name not in mounts:
            raise click.BadParameter(f"no mount {name!r} (mounts: {', '.join(mounts) or 'none'})",
                                     param_hint="--mount")
        mounts = {name: mounts[name]}
    if not mounts:
        raise click.ClickException("progress is not mounted on this app")
    serving = True
    for mount in mounts.values():
        findings = doctor.examine(current_app, mount, course_id)
        click.echo(f"mount {mount.name!r} at {mount.prefix}")
        for finding in findings:
            click.echo(f"  {MARKS[finding.level]}  {finding.topic:<10}  {finding.text}")
            if finding.change and finding.level != "ok":
                click.echo(f"        {'':<10}  change: {finding.change}")
        problems = sum(finding.level == "fail" for finding in findings)
        click.echo("  => it can serve" if not problems else f"  => it cannot serve ({problems} to change)")
        serving = serving and not problems
    raise SystemExit(0 if serving else 1)


progress_cli.add_command(doctor_command)

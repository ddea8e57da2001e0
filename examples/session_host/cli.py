"""`flask --app examples.session_host lms seed`: a demo program and three members, to try it by hand."""
import json

import click
from flask.cli import AppGroup

from .models import Member, Program, Unit

lms_cli = AppGroup("lms", help="The example academy's data.")


@lms_cli.command("seed")
@click.option("--password", required=True, help="The three members' password.")
def seed(password):
    """Grace teaches "Flask 101" (three two-minute units); Ada and Bob are students. Prints ids."""
    grace = Member.register("Grace Hopper", "grace@example.com", password, role="instructor")
    ada = Member.register("Ada Lovelace", "ada@example.com", password)
    bob = Member.register("Bob Outsider", "bob@example.com", password)
    units = [Unit(title=title, duration=120).save() for title in ("Intro", "Routing", "Testing")]
    program = Program(title="Flask 101", instructor=grace, lectures=units).save()
    click.echo(json.dumps({"course": str(program.id), "lectures": [str(unit.id) for unit in units],
                           "users": {member.email: str(member.id) for member in (grace, ada, bob)}}))

"""`flask --app examples.uuid_host lms seed`: a demo course and three people, to try it by hand."""
import json

import click
from flask.cli import AppGroup

from .models import Chapter, Person, Subject

lms_cli = AppGroup("lms", help="The example LMS's data.")


@lms_cli.command("seed")
@click.option("--password", required=True, help="The three people's password.")
def seed(password):
    """Grace teaches "Flask 101" (three two-minute chapters); Ada and Bob are students. Prints ids."""
    grace = Person.register("Grace Hopper", "grace@example.com", password, role="instructor")
    ada = Person.register("Ada Lovelace", "ada@example.com", password)
    bob = Person.register("Bob Outsider", "bob@example.com", password)
    chapters = [Chapter(title=title, duration=120).save() for title in ("Intro", "Routing", "Testing")]
    course = Subject(title="Flask 101", instructor=grace, lectures=chapters).save()
    click.echo(json.dumps({"course": str(course.id), "lectures": [str(chapter.id) for chapter in chapters],
                           "users": {person.email: str(person.id) for person in (grace, ada, bob)}}))

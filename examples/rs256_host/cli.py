"""`flask --app examples.rs256_host lms seed`: a demo course and three accounts, to try it by hand."""
import json

import click
from flask.cli import AppGroup

from .models import Account, Lesson, Training

lms_cli = AppGroup("lms", help="The example LMS's data.")


@lms_cli.command("seed")
@click.option("--password", required=True, help="The three accounts' password.")
def seed(password):
    """Grace teaches "Flask 101" (three two-minute lectures); Ada and Bob are students. Prints ids."""
    users = {}
    for name, email, role in (("Grace Hopper", "grace@example.com", "instructor"),
                              ("Ada Lovelace", "ada@example.com", "student"),
                              ("Bob Outsider", "bob@example.com", "student")):
        user = Account(name=name, email=email, role=role)
        user.set_password(password)
        users[email] = user.save()
    lectures = [Lesson(title=title, duration=120).save() for title in ("Intro", "Routing", "Testing")]
    course = Training(title="Flask 101", instructor=users["grace@example.com"], lectures=lectures).save()
    click.echo(json.dumps({"course": str(course.id), "lectures": [str(lecture.id) for lecture in lectures],
                           "users": {email: str(user.id) for email, user in users.items()}}))

"""`flask --app examples.host_lms lms ...`: accounts and courses, to try the example by hand."""
import json

import click
from bson import ObjectId
from flask.cli import AppGroup
from werkzeug.security import generate_password_hash

from .models import Course, Lesson, User

lms_cli = AppGroup("lms", help="The example LMS's data.")


@lms_cli.command("add-user")
@click.argument("email")
@click.argument("name")
@click.password_option()
@click.option("--role", default="student", type=click.Choice(["student", "instructor", "admin"]))
def add_user(email, name, password, role):
    """Create an account that can sign in at POST /login; prints its id."""
    user = User(full_name=name, email=email, role=role, password_hash=generate_password_hash(password)).save()
    click.echo(str(user.id))


@lms_cli.command("add-course")
@click.argument("name")
@click.argument("lectures", nargs=-1, required=True)
@click.option("--teacher", help="The teacher's account id.")
def add_course(name, lectures, teacher):
    """Create a course with these lecture titles; prints its ids as JSON."""
    course = Course(name=name, teacher=ObjectId(teacher) if teacher else None,
                    course_lectures=[Lesson(title=title) for title in lectures]).save()
    click.echo(json.dumps({"courseId": str(course.id),
                           "lectureIds": [str(lesson.lesson_id) for lesson in course.course_lectures]}))

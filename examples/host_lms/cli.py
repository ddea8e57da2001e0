"""`flask --app examples.host_lms lms ...`: accounts, courses and enrollment, to try the LMS by hand."""
import click
from bson import ObjectId
from flask.cli import AppGroup
from werkzeug.security import generate_password_hash

from .models import ROLES, Course, Lecture, User

lms_cli = AppGroup("lms", help="The example LMS's data.")


def account(email):
    """The account with this email, or a usage error naming it."""
    user = User.objects(email=email).first()
    if user is None:
        raise click.BadParameter(f"no account with the email {email}")
    return user


@lms_cli.command("add-user")
@click.argument("email")
@click.argument("name")
@click.password_option()
@click.option("--role", default="student", type=click.Choice(ROLES))
def add_user(email, name, password, role):
    """Create an account that can sign in at POST /login; prints its id."""
    user = User(name=name, email=email, role=role, password_hash=generate_password_hash(password)).save()
    click.echo(str(user.id))


@lms_cli.command("add-course")
@click.argument("title")
@click.argument("lectures", nargs=-1, required=True)
@click.option("--instructor", metavar="EMAIL", help="The instructor's account.")
@click.option("--duration", type=click.IntRange(min=1), help="Each lecture's length in seconds.")
def add_course(title, lectures, instructor, duration):
    """Create a course with these lecture titles; prints its id, then its lectures' ids."""
    teacher = account(instructor) if instructor else None
    course = Course(id=ObjectId(), title=title, instructor=teacher)
    parts = [Lecture(course=course, title=name, duration=duration).save() for name in lectures]
    course.lectures = parts
    course.save()
    click.echo(" ".join(str(item.id) for item in (course, *parts)))


@lms_cli.command("enroll")
@click.argument("email")
@click.argument("course_id")
def enroll(email, course_id):
    """Enroll the account with EMAIL in the course COURSE_ID."""
    user = account(email)
    if not ObjectId.is_valid(course_id) or not Course.objects(id=course_id).update_one(add_to_set__students=user):
        raise click.BadParameter(f"no course {course_id}")
    click.echo(f"{user.name} is enrolled in {Course.objects.get(id=course_id).title}")

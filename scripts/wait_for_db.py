"""Wait until a MongoDB-wire server answers a ping (used by the run and QA scripts)."""
import sys
import time

import pymongo

DEADLINE_SECONDS = 60


def main(uri):
    """Exit 0 once the server answers, 1 after the deadline."""
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            client.admin.command("ping")
            return 0
        except pymongo.errors.PyMongoError:
            time.sleep(0.3)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Create Superset's admin from SUPERSET_ADMIN_USERNAME / _EMAIL / _PASSWORD if it does not exist yet.

Run by superset-init.sh after `superset init` (which creates the Admin role). The password is read from the
environment, never taken from the command line (`superset fab create-admin --password` puts it in argv, which
anyone on the host sees in `ps`). Idempotent: an existing user of that name is left as it is.
"""

import os
import sys


def main() -> int:
    username = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip()
    email = os.environ.get("SUPERSET_ADMIN_EMAIL", "").strip()
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD", "")
    missing = [name for name, value in (("SUPERSET_ADMIN_USERNAME", username), ("SUPERSET_ADMIN_EMAIL", email),
                                         ("SUPERSET_ADMIN_PASSWORD", password)) if not value]  # fmt: skip
    if missing:
        print(f"superset-create-admin: not set: {', '.join(missing)} (run `invoke env`)", file=sys.stderr)
        return 1

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.extensions import security_manager as sm

        if sm.find_user(username=username) is not None:
            print(f"superset-create-admin: admin {username!r} already exists, left as it is")
            return 0
        if sm.find_user(email=email) is not None:
            print(f"superset-create-admin: {email} belongs to another user; set SUPERSET_ADMIN_EMAIL", file=sys.stderr)
            return 1
        role = sm.find_role(sm.auth_role_admin)
        if role is None:
            print(f"superset-create-admin: no {sm.auth_role_admin!r} role (did `superset init` run?)", file=sys.stderr)
            return 1
        user = sm.add_user(username, "Enlaight", "Admin", email, role, password=password)
        if not user:
            print(f"superset-create-admin: creating {username!r} failed (see the log above)", file=sys.stderr)
            return 1
        print(f"superset-create-admin: created admin {username!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`invoke upgrade`: plan (pure, from facts read off the engine), then back up, verify, swap images, migrate,
start and wait, rolling back to the previous images and the pre-upgrade set by itself when anything fails.

Nothing is imported here: tasks.py imports `upgrade.tasks` on every invoke call, and the heavy modules (run,
probe, the backup code) load only when the task runs."""

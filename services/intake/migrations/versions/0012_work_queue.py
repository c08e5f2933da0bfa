"""intake: staff roster from routing, SLA clock states, full-text search, work-queue indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from alembic import op

from shared.migrations import grant_service_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The key the work queue sorts and pages by: the nearest deadline of a running clock,
# 'infinity' when none runs (paused, stopped or not yet routed), so keyset pagination
# over (queue_due, case_id) never meets a NULL.
QUEUE_DUE = """CASE
    WHEN first_response_state = 'running' AND resolution_state = 'running'
        THEN LEAST(first_response_due, resolution_due)
    WHEN first_response_state = 'running' THEN first_response_due
    WHEN resolution_state = 'running' THEN resolution_due
END"""
SEARCH = """setweight(to_tsvector('simple'::regconfig, reference), 'A')
    || setweight(to_tsvector('english'::regconfig, subject), 'A')
    || setweight(to_tsvector('english'::regconfig, description), 'B')"""
OPEN = "status NOT IN ('resolved', 'closed')"
COVER = """INCLUDE (status, owner_id, team, sensitivity, logged_by, submitted_by,
    reporter_employee_id, anonymous, priority, category, channel, submitted_at,
    first_response_state, first_response_left, resolution_state, resolution_left)"""


def upgrade() -> None:
    # The roster routing publishes (routing.roster_published); the latest replaces it all.
    op.execute(
        """CREATE TABLE intake.roster (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            policy_hash text NOT NULL,
            version integer NOT NULL,
            published_at timestamptz NOT NULL
        )"""
    )
    op.execute(
        """CREATE TABLE intake.calendars (
            name text PRIMARY KEY,
            time_zone text NOT NULL,
            hours jsonb NOT NULL,
            holidays date[] NOT NULL DEFAULT '{}'
        )"""
    )
    op.execute(
        """CREATE TABLE intake.teams (
            team text PRIMARY KEY,
            label text NOT NULL,
            lead_id text,
            calendar text NOT NULL
        )"""
    )
    op.execute(
        """CREATE TABLE intake.staff (
            staff_id text PRIMARY KEY,
            name text NOT NULL,
            email text NOT NULL,
            teams text[] NOT NULL DEFAULT '{}'
        )"""
    )
    # Each clock's state as intake follows it (running / paused / stopped); while paused,
    # the working time it had left when it paused.
    op.execute(
        """ALTER TABLE intake.cases
            ADD COLUMN first_response_state text,
            ADD COLUMN first_response_left interval,
            ADD COLUMN resolution_state text,
            ADD COLUMN resolution_left interval"""
    )
    op.execute(
        "ALTER TABLE intake.cases ADD COLUMN queue_due timestamptz NOT NULL"
        f" GENERATED ALWAYS AS (COALESCE({QUEUE_DUE}, 'infinity'::timestamptz)) STORED"
    )
    op.execute(
        f"ALTER TABLE intake.cases ADD COLUMN search tsvector GENERATED ALWAYS AS ({SEARCH}) STORED"
    )
    op.execute("CREATE INDEX cases_search_idx ON intake.cases USING gin (search)")
    # The default search (open cases) reads only open cases' entries and rows.
    op.execute(
        f"CREATE INDEX cases_search_open_idx ON intake.cases USING gin (search) WHERE {OPEN}"
    )
    op.execute(
        "CREATE INDEX cases_reference_prefix_idx ON intake.cases (reference text_pattern_ops)"
    )
    # Keyset pages in deadline order: open cases (the default), per status, per owner, per
    # team, unowned. The open-cases and per-status ones carry every column the visibility
    # rule, the filters and the counts per scope read, so counting tens of thousands of
    # open cases is an index-only scan instead of a heap visit per case (bench/work_queue).
    op.execute(
        f"CREATE INDEX cases_queue_open_idx ON intake.cases (queue_due, case_id) {COVER}"
        f" WHERE {OPEN}"
    )
    op.execute(f"CREATE INDEX cases_queue_idx ON intake.cases (status, queue_due, case_id) {COVER}")
    for column in ("owner_id", "team"):
        name = column.removesuffix("_id")
        op.execute(
            f"CREATE INDEX cases_queue_{name}_idx ON intake.cases"
            f" ({column}, queue_due, case_id) {COVER} WHERE {OPEN}"
        )
        # Pages and counts that ask for ended cases too (a status filter).
        op.execute(
            f"CREATE INDEX cases_any_status_{name}_idx ON intake.cases"
            f" ({column}, status, queue_due, case_id) {COVER}"
        )
    op.execute("CREATE INDEX cases_submitted_idx ON intake.cases (submitted_at)")
    op.execute(
        "CREATE INDEX cases_queue_unowned_idx ON intake.cases (queue_due, case_id)"
        f" WHERE owner_id IS NULL AND {OPEN}"
    )
    op.execute(
        "CREATE INDEX cases_logged_by_idx ON intake.cases (logged_by) WHERE logged_by IS NOT NULL"
    )
    for statement in grant_service_sql("intake"):
        op.execute(statement)


def downgrade() -> None:
    for index in (
        "cases_search_idx", "cases_search_open_idx", "cases_reference_prefix_idx",
        "cases_queue_open_idx", "cases_queue_idx", "cases_queue_owner_idx", "cases_queue_team_idx",
        "cases_queue_unowned_idx", "cases_logged_by_idx", "cases_submitted_idx",
        "cases_any_status_owner_idx", "cases_any_status_team_idx",
    ):  # fmt: skip
        op.execute(f"DROP INDEX intake.{index}")
    op.execute(
        """ALTER TABLE intake.cases DROP COLUMN search, DROP COLUMN queue_due,
            DROP COLUMN first_response_state, DROP COLUMN first_response_left,
            DROP COLUMN resolution_state, DROP COLUMN resolution_left"""
    )
    op.execute("DROP TABLE intake.staff, intake.teams, intake.calendars, intake.roster")

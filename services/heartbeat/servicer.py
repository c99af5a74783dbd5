"""HeartbeatService: converts protobuf <-> domain values and validates requests.

Errors are raised as ``medic.errors`` types; the shared interceptor maps them
to status codes.
"""
from __future__ import annotations

import datetime as dt

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from medic import contracts, enums
from medic.contracts import required_name
from medic.db import Row
from medic.errors import FailedPrecondition, InvalidArgument, NotFound
from medic.interceptors import current_identity
from medic.timestamps import to_timestamp
from medic.v1 import common_pb2, heartbeat_pb2, heartbeat_pb2_grpc
from services.heartbeat import audit_log, schedule, search, snapshots, status, windows
from services.heartbeat.alert_store import AlertStore
from services.heartbeat.heartbeat_store import HeartbeatStore, IngestItem, RecordOutcome
from services.heartbeat.ingest import IngestQueue
from services.heartbeat.routing_client import RoutingLookups
from services.heartbeat.run_store import MIN_RUNS_FOR_STATS, RunStore
from services.heartbeat.service_store import ServiceStore
from services.heartbeat.window_store import WindowStore, window_of
from services.heartbeat.windows import Scope, WindowBook

MAX_NAME_LENGTH = 255
MAX_BATCH = 1000
MAX_LISTED_HEARTBEATS = 250
DEFAULT_TEAM = "site-reliability"

MAX_DURATION_SECONDS = 31_536_000  # a year
MAX_FAILURE_TOLERANCE = 1000
DEFAULT_LISTED_RUNS = 50
MAX_LISTED_RUNS = 1000
OUTCOME_TO_PB = {outcome: enums.RECORD_OUTCOME.numbers[outcome] for outcome in RecordOutcome}
# What each job signal records as the heartbeat's status.
JOB_SIGNAL_STATUS = {heartbeat_pb2.JOB_SIGNAL_START: status.STARTED,
                     heartbeat_pb2.JOB_SIGNAL_COMPLETE: status.COMPLETED,
                     heartbeat_pb2.JOB_SIGNAL_FAIL: status.FAILED}
# Built once: a repeated field copies what it is given.
OUTCOME_ONLY_RESULTS = {outcome: heartbeat_pb2.RecordHeartbeatResult(outcome=code)
                        for outcome, code in OUTCOME_TO_PB.items()}


def service_to_pb(row: Row) -> heartbeat_pb2.Service:
    return heartbeat_pb2.Service(
        service_id=row["service_id"], heartbeat_name=row["heartbeat_name"],
        service_name=row["service_name"], alert_interval_seconds=row["alert_interval_seconds"],
        threshold=row["threshold"], grace_period_seconds=row["grace_period_seconds"],
        team=row["team"], priority=enums.PRIORITY.numbers[row["priority"]], runbook=row["runbook"] or "",
        notify_mode=enums.NOTIFY_MODE.numbers[row["notify_mode"]], active=row["active"],
        muted=row["muted"], muted_at=to_timestamp(row["muted_at"]), state=enums.SERVICE_STATE.numbers[row["state"]],
        created_at=to_timestamp(row["created_at"]), updated_at=to_timestamp(row["updated_at"]),
        activated_at=to_timestamp(row["activated_at"]), last_heartbeat_at=to_timestamp(row["last_heartbeat_at"]),
        deadline_at=to_timestamp(row["deadline_at"]), team_id=row["team_id"] or 0,
        mute_reason=row.get("mute_reason") or "", muted_by=row.get("muted_by") or "",
        muted_until=to_timestamp(row.get("muted_until")),
        schedule=row["schedule"] or "", timezone=row["timezone"],
        max_duration_seconds=row["max_duration_seconds"] or 0,
        min_duration_seconds=row["min_duration_seconds"] or 0,
        failure_tolerance=row["failure_tolerance"], consecutive_failures=row["consecutive_failures"],
        schedule_description=_describe(row["schedule"], row["timezone"]))


def _describe(expression: str | None, timezone: str) -> str:
    found = schedule.of(expression, timezone)
    return found.describe() if found is not None else ""


def run_to_pb(row: Row) -> heartbeat_pb2.JobRun:
    run = heartbeat_pb2.JobRun(
        job_run_id=row["job_run_id"], service_id=row["service_id"], run_id=row["run_id"] or "",
        status=enums.RUN_STATUS.numbers[row["status"]], started_at=to_timestamp(row["started_at"]),
        completed_at=to_timestamp(row["completed_at"]), message=row["message"] or "")
    if row["duration_ms"] is not None:
        run.duration_ms = row["duration_ms"]
    return run


def transition_to_pb(row: Row) -> heartbeat_pb2.ServiceTransition:
    return heartbeat_pb2.ServiceTransition(
        transition_id=row["transition_id"], service_id=row["service_id"],
        from_state=enums.SERVICE_STATE.numbers[row["from_state"]],
        to_state=enums.SERVICE_STATE.numbers[row["to_state"]],
        reason=row["reason"], alert_id=row["alert_id"] or 0, at=to_timestamp(row["at"]),
        suppressed_by=row.get("suppressed_by") or 0)


def heartbeat_to_pb(row: Row, time: Timestamp | None = None) -> heartbeat_pb2.Heartbeat:
    """``time``: ``row["time"]`` converted already (a batch shares one time)."""
    return heartbeat_pb2.Heartbeat(
        heartbeat_id=row["heartbeat_id"], service_id=row["service_id"],
        heartbeat_name=row["heartbeat_name"], service_name=row["service_name"],
        time=to_timestamp(row["time"]) if time is None else time, status=row["status"],
        run_id=row["run_id"] or "", team=row["team"], priority=enums.PRIORITY.numbers[row["priority"]])


def alert_to_pb(row: Row) -> heartbeat_pb2.Alert:
    return heartbeat_pb2.Alert(
        alert_id=row["alert_id"], service_id=row["service_id"],
        heartbeat_name=row["heartbeat_name"], service_name=row["service_name"],
        reason=enums.ALERT_REASON.numbers[row["reason"]], active=row["active"],
        opened_at=to_timestamp(row["opened_at"]),
        closed_at=to_timestamp(row["closed_at"]), notification_count=row["notification_count"],
        acknowledged_at=to_timestamp(row.get("acknowledged_at")), acknowledged_by=row.get("acknowledged_by") or "",
        suppressed_by=row.get("suppressed_by") or 0)


SCOPE_TO_DB = {number: Scope(name) for number, name in enums.WINDOW_SCOPE.names.items()}
SCOPE_FROM_DB = {value: key for key, value in SCOPE_TO_DB.items()}
MAX_MUTE_REASON = 1000


def window_to_pb(row: Row, now: dt.datetime, book: WindowBook | None = None) -> heartbeat_pb2.MaintenanceWindow:
    """``book``: where recurring windows' stretches are remembered (a list of
    many would otherwise evaluate each cron expression on every call)."""
    window = window_of(row)
    if book is not None and book.windows.get(window.window_id) == window:
        stretch, following = book.state(book.windows[window.window_id], now)
    else:
        stretch = window.open_at(now)
        following = None if stretch is not None else window.next_start(now)
    return heartbeat_pb2.MaintenanceWindow(
        window_id=row["window_id"], scope=SCOPE_FROM_DB[Scope(row["scope"])], service_id=row["service_id"] or 0,
        team=row["team"] or "", name_glob=row["name_glob"] or "", starts_at=to_timestamp(row["starts_at"]),
        ends_at=to_timestamp(row["ends_at"]), cron=row["cron"] or "", duration_seconds=row["duration_seconds"] or 0,
        timezone=row["timezone"] or "", reason=row["reason"], announce=row["announce"],
        created_by=row["created_by"], created_at=to_timestamp(row["created_at"]),
        updated_at=to_timestamp(row["updated_at"]), open_now=stretch is not None,
        open_until=to_timestamp(stretch.end if stretch else None), next_start=to_timestamp(following))


def window_fields(spec: heartbeat_pb2.MaintenanceWindowSpec) -> dict:
    """A window's fields from its spec, checked (InvalidArgument names the field)."""
    if spec.scope not in SCOPE_TO_DB:
        raise InvalidArgument("window.scope must be one of WINDOW_SCOPE_SERVICE, WINDOW_SCOPE_TEAM, "
                              "WINDOW_SCOPE_ALL, WINDOW_SCOPE_GLOB")
    return windows.check_window({
        "scope": SCOPE_TO_DB[spec.scope], "service_id": spec.service_id, "team": spec.team,
        "name_glob": spec.name_glob,
        "starts_at": _time(spec, "starts_at", "window.starts_at"),
        "ends_at": _time(spec, "ends_at", "window.ends_at"),
        "cron": spec.cron.strip(), "duration_seconds": spec.duration_seconds, "timezone": spec.timezone,
        "reason": spec.reason, "announce": spec.announce})


def _time(message, name: str, field: str) -> dt.datetime | None:
    """A Timestamp field as a datetime (None when unset); InvalidArgument when it
    is outside the years 1-9999."""
    if not message.HasField(name):
        return None
    try:
        return getattr(message, name).ToDatetime(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is out of range") from None


def caller() -> str:
    """Who is calling, for the records people read (creator, acknowledger, muter)."""
    identity = current_identity()
    return f"{identity.name} ({identity.principal})" if identity.name else identity.principal


def skip_to_pb(row: Row) -> heartbeat_pb2.NotificationSkip:
    return heartbeat_pb2.NotificationSkip(
        skip_id=row["skip_id"], alert_id=row["alert_id"], service_id=row["service_id"], kind=row["kind"],
        reason=row["reason"], window_id=row["window_id"] or 0, at=to_timestamp(row["at"]))


# An interval sent at registration: the contract's range, as updates have it.
_INTERVAL_LIMITS = contracts.field_limits(
    heartbeat_pb2.UpdateServiceRequest.DESCRIPTOR.fields_by_name["alert_interval_seconds"])


def _registered_interval(value: int, cron: str | None, zone: str) -> int:
    """A scheduled service's deadline is its schedule's, so its interval may be
    left out (0): its reminders then come once per the schedule's period.
    Without a schedule the interval is required."""
    if cron and not value:
        return schedule.of(cron, zone).period_seconds(_now())
    problem = _INTERVAL_LIMITS.violation("alert_interval_seconds", value)
    if problem:
        raise InvalidArgument(problem)
    return value


def _interval(value: int) -> int:
    if value < 1:
        raise InvalidArgument("alert_interval_seconds must be >= 1")
    return value


def _threshold(value: int) -> int:
    if value < 1:
        raise InvalidArgument("threshold must be >= 1")
    return value


def _grace(value: int) -> int:
    if value < 0:
        raise InvalidArgument("grace_period_seconds must be >= 0")
    return value


def _duration(value: int, field: str) -> int | None:
    """A duration limit in seconds; 0 is none."""
    if not 0 <= value <= MAX_DURATION_SECONDS:
        raise InvalidArgument(f"{field} must be 0 (no limit) to {MAX_DURATION_SECONDS}")
    return value or None


def _tolerance(value: int) -> int:
    if not 0 <= value <= MAX_FAILURE_TOLERANCE:
        raise InvalidArgument(f"failure_tolerance must be 0-{MAX_FAILURE_TOLERANCE}")
    return value


def _check_durations(fields: dict) -> None:
    low, high = fields.get("min_duration_seconds"), fields.get("max_duration_seconds")
    if low and high and low >= high:
        raise InvalidArgument("min_duration_seconds must be less than max_duration_seconds")


def _team_id(value: int) -> int | None:
    if value < 0:
        raise InvalidArgument("team_id must be a team id (0: none)")
    return value or None


def _enum(value: int, mapping: dict, field: str) -> str:
    if value not in mapping:
        raise InvalidArgument(f"{field} must be one of {', '.join(sorted(mapping.values()))}")
    return mapping[value]


def _service_key(request) -> tuple[str | None, int | None]:
    """(heartbeat_name, None) or (None, service_id) of a request naming a service."""
    which = request.WhichOneof("service")
    if which == "heartbeat_name":
        return required_name(request.heartbeat_name, "heartbeat_name"), None
    if which == "service_id":
        return None, request.service_id
    raise InvalidArgument("heartbeat_name or service_id is required")


def _service_ref(request) -> dict:
    name, service_id = _service_key(request)
    return {"heartbeat_name": name} if name is not None else {"service_id": service_id}


def ingest_item(request: heartbeat_pb2.RecordHeartbeatRequest) -> IngestItem:
    name, service_id = _service_key(request)
    return IngestItem(name, service_id, status.normalize_status(request.status),
                      status.validate_run_id(request.run_id), status.validate_message(request.message))


def _changes(request) -> dict:
    """The settings an UpdateService or BulkUpdateServices request sets (the
    fields it has and were given), checked."""
    fields = request.DESCRIPTOR.fields_by_name
    given = [name for name in fields if fields[name].has_presence and name not in ("heartbeat_name", "service_id",
                                                                                    "down")
             and request.HasField(name)]
    changes: dict = {}
    for name in given:
        value = getattr(request, name)
        if name == "service_name":
            changes[name] = required_name(value, "service_name")
        elif name == "alert_interval_seconds":
            changes[name] = _interval(value)
        elif name == "threshold":
            changes[name] = _threshold(value)
        elif name == "grace_period_seconds":
            changes[name] = _grace(value)
        elif name == "team":
            changes[name] = value.strip() or DEFAULT_TEAM
        elif name == "team_id":
            changes[name] = _team_id(value)
        elif name == "priority":
            changes[name] = _enum(value, enums.PRIORITY.names, "priority")
        elif name == "runbook":
            changes[name] = value or None
        elif name == "notify_mode":
            changes[name] = _enum(value, enums.NOTIFY_MODE.names, "notify_mode")
        elif name in ("active", "muted"):
            changes[name] = value
        elif name == "schedule":
            changes[name] = schedule.check_schedule(value)
        elif name == "timezone":
            changes[name] = schedule.check_timezone(value)
        elif name in ("max_duration_seconds", "min_duration_seconds"):
            changes[name] = _duration(value, name)
        elif name == "failure_tolerance":
            changes[name] = _tolerance(value)
    return changes


MAX_BULK = 5000


def _struct(value) -> struct_pb2.Struct | None:
    if value is None:
        return None
    message = struct_pb2.Struct()
    message.update(value)
    return message


def audit_event_to_pb(row: Row) -> heartbeat_pb2.AuditEvent:
    return heartbeat_pb2.AuditEvent(
        event_id=row["event_id"], at=to_timestamp(row["at"]), source=row["source"], action_type=row["action_type"],
        resource=row["resource"], resource_id=row["resource_id"], service_id=row["service_id"] or 0,
        execution_id=row["execution_id"] or 0, principal=row["principal"], key_id=row["key_id"] or "",
        key_name=row["key_name"] or "", actor=row["actor"] or "", request_id=row["request_id"] or "",
        bulk_id=str(row["bulk_id"] or ""), before=_struct(row["before"]), after=_struct(row["after"]),
        details=_struct(row["details"]))


def snapshot_to_pb(row: Row) -> heartbeat_pb2.Snapshot:
    return heartbeat_pb2.Snapshot(
        snapshot_id=row["snapshot_id"], service_id=row["service_id"], heartbeat_name=row["heartbeat_name"],
        action_type=row["action_type"], snapshot_data=_struct(snapshots.public_data(row["snapshot_data"])),
        actor=row["actor"] or "", bulk_id=str(row["bulk_id"] or ""), created_at=to_timestamp(row["created_at"]),
        restored_at=to_timestamp(row["restored_at"]))


def _when(request, field: str) -> dt.datetime | None:
    return getattr(request, field).ToDatetime(tzinfo=dt.timezone.utc) if request.HasField(field) else None


class HeartbeatServicer(heartbeat_pb2_grpc.HeartbeatServiceServicer):
    def __init__(self, services: ServiceStore, heartbeats: HeartbeatStore, alerts: AlertStore,
                 ingest: IngestQueue, searches: search.ServiceSearch, runs: RunStore,
                 windows: WindowStore | None = None, on_committed=lambda changes: None, *,
                 audit: audit_log.AuditLog | None = None, snapshot_reader: snapshots.SnapshotReader | None = None,
                 routing: RoutingLookups | None = None):
        self.runs = runs
        self.windows = windows or WindowStore(services.db)
        self.on_committed = on_committed
        self.services = services
        self.heartbeats = heartbeats
        self.alerts = alerts
        self.ingest = ingest
        self.searches = searches
        self.audit_log = audit or audit_log.AuditLog(services.db)
        self.snapshots = snapshot_reader or snapshots.SnapshotReader(services.db)
        # The team and targets of a service, for its snapshots (None: not asked).
        self.routing = routing

    def RegisterService(self, request, context):
        cron = schedule.check_schedule(request.schedule)
        zone = schedule.check_timezone(request.timezone)
        fields = {
            "heartbeat_name": required_name(request.heartbeat_name, "heartbeat_name"),
            "service_name": required_name(request.service_name, "service_name"),
            "alert_interval_seconds": _registered_interval(request.alert_interval_seconds, cron, zone),
            "threshold": _threshold(request.threshold or 1),
            "grace_period_seconds": _grace(request.grace_period_seconds),
            "team": request.team.strip() or DEFAULT_TEAM,
            "priority": _enum(request.priority or common_pb2.PRIORITY_P3, enums.PRIORITY.names, "priority"),
            "runbook": request.runbook or None,
            "notify_mode": _enum(request.notify_mode or common_pb2.NOTIFY_MODE_ALL,
                                 enums.NOTIFY_MODE.names, "notify_mode"),
            "team_id": _team_id(request.team_id),
            "schedule": cron,
            "timezone": zone,
            "max_duration_seconds": _duration(request.max_duration_seconds, "max_duration_seconds"),
            "min_duration_seconds": _duration(request.min_duration_seconds, "min_duration_seconds"),
            "failure_tolerance": _tolerance(request.failure_tolerance),
        }
        _check_durations(fields)
        row, created = self.services.register(fields)
        return heartbeat_pb2.RegisterServiceResponse(service=service_to_pb(row), created=created)

    def GetService(self, request, context):
        return heartbeat_pb2.GetServiceResponse(service=service_to_pb(self.services.get(**_service_ref(request))))

    def ListServices(self, request, context):
        active = request.active if request.HasField("active") else None
        rows = self.services.list(service_name=request.service_name, active=active)
        return heartbeat_pb2.ListServicesResponse(services=[service_to_pb(r) for r in rows])

    def UpdateService(self, request, context):
        ref = _service_ref(request)
        changes = _changes(request)
        _check_durations(changes)
        down = request.down if request.HasField("down") else None
        row = self.services.update(changes, down=down, related=self._related(self.services.get(**ref)), **ref)
        return heartbeat_pb2.UpdateServiceResponse(service=service_to_pb(row))

    def DeleteService(self, request, context):
        ref = _service_ref(request)
        self.services.delete(related=self._related(self.services.get(**ref)), **ref)
        return heartbeat_pb2.DeleteServiceResponse()

    def ListServiceTransitions(self, request, context):
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit must be 0-1000")
        limit = request.limit or 100
        # One row past the page tells whether another page follows.
        rows = self.services.transitions(limit + 1, offset=request.offset, **_service_ref(request))
        return heartbeat_pb2.ListServiceTransitionsResponse(
            transitions=[transition_to_pb(r) for r in rows[:limit]], has_more=len(rows) > limit)

    def _record_one(self, item: IngestItem, what: str) -> heartbeat_pb2.Heartbeat:
        [result] = self.ingest.submit([item])
        if result.outcome == RecordOutcome.UNKNOWN_SERVICE:
            raise NotFound(f"{what} is not registered")
        if result.outcome == RecordOutcome.INACTIVE_SERVICE:
            raise FailedPrecondition(f"{what} is inactive")
        return heartbeat_to_pb(result.heartbeat)

    def RecordHeartbeat(self, request, context):
        item = ingest_item(request)
        what = (f"heartbeat {item.heartbeat_name!r}" if item.heartbeat_name is not None
                else f"service id {item.service_id}")
        return heartbeat_pb2.RecordHeartbeatResponse(heartbeat=self._record_one(item, what))

    def RecordHeartbeats(self, request, context):
        count = len(request.heartbeats)
        if not 1 <= count <= MAX_BATCH:
            raise InvalidArgument(f"a batch holds 1 to {MAX_BATCH} heartbeats, not {count}")
        results: list = [None] * count
        valid_indexes, valid_items = [], []
        for index, item_request in enumerate(request.heartbeats):
            try:
                item = ingest_item(item_request)
            except InvalidArgument as err:
                results[index] = heartbeat_pb2.RecordHeartbeatResult(
                    outcome=heartbeat_pb2.RECORD_OUTCOME_INVALID, message=err.message)
                continue
            valid_indexes.append(index)
            valid_items.append(item)
        if valid_items:
            recorded = self.ingest.submit(valid_items)
            if request.outcomes_only:
                for index, result in zip(valid_indexes, recorded):
                    results[index] = OUTCOME_ONLY_RESULTS[result.outcome]
            else:
                times: dict = {}  # time -> Timestamp, converted once per batch
                for index, result in zip(valid_indexes, recorded):
                    heartbeat = result.heartbeat
                    if heartbeat is not None:
                        time = times.get(result.time)
                        if time is None:
                            time = times[result.time] = to_timestamp(result.time)
                        heartbeat = heartbeat_to_pb(heartbeat, time)
                    results[index] = heartbeat_pb2.RecordHeartbeatResult(
                        outcome=OUTCOME_TO_PB[result.outcome], heartbeat=heartbeat)
        return heartbeat_pb2.RecordHeartbeatsResponse(results=results)

    def RecordJobSignal(self, request, context):
        signal_status = JOB_SIGNAL_STATUS.get(request.signal)
        if signal_status is None:
            raise InvalidArgument("signal must be JOB_SIGNAL_START, JOB_SIGNAL_COMPLETE or JOB_SIGNAL_FAIL")
        item = IngestItem(heartbeat_name=None, service_id=request.service_id, status=signal_status,
                          run_id=status.validate_run_id(request.run_id),
                          message=status.validate_message(request.message))
        heartbeat = self._record_one(item, f"service id {request.service_id}")
        return heartbeat_pb2.RecordJobSignalResponse(heartbeat=heartbeat)

    def ListHeartbeats(self, request, context):
        if request.max_count < 0:
            raise InvalidArgument("max_count must be >= 0")
        limit = min(request.max_count or MAX_LISTED_HEARTBEATS, MAX_LISTED_HEARTBEATS)
        rows = self.heartbeats.list_heartbeats(request.heartbeat_name.strip(), request.service_name, limit + 1,
                                               request.offset)
        return heartbeat_pb2.ListHeartbeatsResponse(heartbeats=[heartbeat_to_pb(r) for r in rows[:limit]],
                                                    has_more=len(rows) > limit)

    def ListAlerts(self, request, context):
        active = request.active if request.HasField("active") else None
        if request.limit < 0 or request.limit > 1000:
            raise InvalidArgument("limit must be 0-1000")
        limit = request.limit or (1000 if active is not None else 100)
        rows = self.alerts.list_alerts(active, limit + 1, request.offset)
        return heartbeat_pb2.ListAlertsResponse(alerts=[alert_to_pb(r) for r in rows[:limit]],
                                                has_more=len(rows) > limit)

    # --- reads for people looking at many services (the web console) ----------

    def SearchServices(self, request, context):
        query = search.ServiceQuery.from_request(request)
        found = self.searches.services(query, counts=request.include_counts, counts_only=request.counts_only)
        response = heartbeat_pb2.SearchServicesResponse(
            services=[service_to_pb(r) for r in found.services], total_matching=found.matching,
            next_cursor=found.next_cursor, previous_cursor=found.previous_cursor)
        if found.counts is not None:
            c = found.counts
            response.counts.CopyFrom(heartbeat_pb2.ServiceCounts(
                up=c["up"], down=c["down"], new=c["new"], muted=c["muted"], inactive=c["inactive"],
                total=c["total"]))
        return response

    def ListRecentTransitions(self, request, context):
        if not 0 <= request.limit <= search.MAX_RECENT_TRANSITIONS:
            raise InvalidArgument(f"limit must be 0-{search.MAX_RECENT_TRANSITIONS}")
        rows = self.searches.recent_transitions(request.limit or search.DEFAULT_RECENT_TRANSITIONS)
        return heartbeat_pb2.ListRecentTransitionsResponse(transitions=[
            heartbeat_pb2.RecentTransition(transition=transition_to_pb(r), heartbeat_name=r["heartbeat_name"],
                                           service_name=r["service_name"]) for r in rows])

    def GetHeartbeatTimeline(self, request, context):
        name, service_id = _service_key(request)
        window = request.window_seconds or search.DEFAULT_TIMELINE_WINDOW
        if not search.MIN_TIMELINE_WINDOW <= window <= search.MAX_TIMELINE_WINDOW:
            raise InvalidArgument(f"window_seconds must be {search.MIN_TIMELINE_WINDOW}-"
                                  f"{search.MAX_TIMELINE_WINDOW}")
        buckets = request.buckets or search.DEFAULT_TIMELINE_BUCKETS
        if not 1 <= buckets <= search.MAX_TIMELINE_BUCKETS:
            raise InvalidArgument(f"buckets must be 1-{search.MAX_TIMELINE_BUCKETS}")
        timeline = self.searches.timeline(heartbeat_name=name, service_id=service_id, window_seconds=window,
                                        buckets=buckets)
        return heartbeat_pb2.GetHeartbeatTimelineResponse(
            start=to_timestamp(timeline.start), end=to_timestamp(timeline.end),
            bucket_seconds=round(timeline.bucket_seconds),
            buckets=[heartbeat_pb2.TimelineBucket(start=to_timestamp(at), heartbeats=beats, failures=failures)
                     for at, beats, failures in timeline.buckets])

    def SearchAlerts(self, request, context):
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit must be 0-1000")
        if request.reason and request.reason not in enums.ALERT_REASON.names:
            raise InvalidArgument("reason must be an AlertReason")
        if "\x00" in request.team:
            raise InvalidArgument("team must not contain NUL characters")
        rows, total = self.searches.alerts(
            active=request.active if request.HasField("active") else None, service_id=request.service_id,
            team=request.team.strip(), reason=enums.ALERT_REASON.names.get(request.reason, ""),
            limit=request.limit or 100,
            total=request.include_total)
        return heartbeat_pb2.SearchAlertsResponse(alerts=[
            heartbeat_pb2.AlertWithTeam(alert=alert_to_pb(r), team=r["team"]) for r in rows],
            total_matching=total or 0)

    # --- change history: the audit log, snapshots, undo ------------------------

    def _related(self, service: Row) -> snapshots.Related:
        if self.routing is None:
            return snapshots.Related(unavailable=True)
        return self.routing.related(service["service_id"], service["team_id"])

    def ListAuditEvents(self, request, context):
        service_id = request.service_id
        if request.heartbeat_name.strip():
            service_id = self.services.get(heartbeat_name=request.heartbeat_name.strip())["service_id"]
        limit = request.limit or audit_log.DEFAULT_PAGE
        query = audit_log.AuditQuery(
            execution_id=request.execution_id, service_id=service_id, action_type=request.action_type.strip(),
            actor=request.actor.strip(), start=_when(request, "start"), end=_when(request, "end"),
            resource=request.resource.strip(), resource_id=request.resource_id.strip(),
            bulk_id=request.bulk_id.strip(), limit=limit, offset=request.offset)
        rows, total = self.audit_log.events(query)
        return heartbeat_pb2.ListAuditEventsResponse(
            events=[audit_event_to_pb(r) for r in rows], total_count=total, limit=limit, offset=request.offset,
            has_more=request.offset + len(rows) < total)

    def ListSnapshots(self, request, context):
        limit = request.limit or snapshots.DEFAULT_PAGE
        rows, total = self.snapshots.list(snapshots.SnapshotQuery(
            service_id=request.service_id, action_type=request.action_type.strip(), start=_when(request, "start"),
            end=_when(request, "end"), bulk_id=request.bulk_id.strip(), limit=limit, offset=request.offset))
        return heartbeat_pb2.ListSnapshotsResponse(
            snapshots=[snapshot_to_pb(r) for r in rows], total_count=total, limit=limit, offset=request.offset,
            has_more=request.offset + len(rows) < total)

    def GetSnapshot(self, request, context):
        return heartbeat_pb2.GetSnapshotResponse(snapshot=snapshot_to_pb(self.snapshots.get(request.snapshot_id)))

    def RestoreSnapshot(self, request, context):
        snap = self.snapshots.get(request.snapshot_id)
        current = self.services.find(snap["service_id"])
        related = self._related(current) if current is not None else snapshots.Related()
        team_id = snap["snapshot_data"].get("team_id")
        team_exists = self.routing.team_exists(team_id) if team_id and self.routing is not None else None
        restored = self.services.restore(request.snapshot_id, related, team_exists=team_exists)
        restored.notes += self._restore_targets(restored, related)
        return heartbeat_pb2.RestoreSnapshotResponse(
            snapshot=snapshot_to_pb(restored.snapshot), service=service_to_pb(restored.service),
            recreated=restored.recreated, message=restored.message)

    def _restore_targets(self, restored: snapshots.Restored, related: snapshots.Related) -> list[str]:
        """Routing puts the service's targets back as the snapshot holds them
        (after the commit: they are routing's); what could not be, in words."""
        wanted = restored.snapshot["snapshot_data"].get("targets")
        if wanted is None:
            what = "not re-created" if restored.recreated else "left as they are"
            return [f"Its notification targets were {what} (the snapshot does not hold them: "
                    "routing did not answer when it was taken)."]
        if restored.recreated and not wanted:
            return []
        if self.routing is None:
            return ["Its notification targets were not restored (routing is not configured)."]
        service_id = restored.service["service_id"]
        if restored.recreated:
            return self.routing.recreate_targets(service_id, wanted)
        if related.targets is None:
            return ["Its notification targets were not restored (routing did not answer)."]
        return self.routing.restore_targets(service_id, wanted, related.targets)

    def BulkUpdateServices(self, request, context):
        count = len(request.service_ids)
        if not 1 <= count <= MAX_BULK:
            raise InvalidArgument(f"service_ids: 1 to {MAX_BULK} services, not {count}")
        if any(service_id < 1 for service_id in request.service_ids):
            raise InvalidArgument("service_ids: each must be a service id (>= 1)")
        changes = _changes(request)
        if not changes:
            raise InvalidArgument("no change given (active, muted, priority, team, team_id, "
                                  "alert_interval_seconds, threshold, grace_period_seconds)")
        related = self.routing.related_all() if self.routing is not None else (lambda row: snapshots.Related(
            unavailable=True))
        bulk_id, changed = self.services.bulk_update(list(request.service_ids), changes, related)
        return heartbeat_pb2.BulkUpdateServicesResponse(bulk_id=str(bulk_id), changed=changed)

    def UndoBulkChange(self, request, context):
        related = self.routing.related_all() if self.routing is not None else (lambda row: snapshots.Related(
            unavailable=True))
        undo_id, restored, notes = self.services.undo_bulk(request.bulk_id.strip(), related)
        return heartbeat_pb2.UndoBulkChangeResponse(bulk_id=str(undo_id), restored=restored)

    # --- job runs ---------------------------------------------------------------

    def _job_service(self, request) -> int:
        """The id of the service a job-run read names (NOT_FOUND: "... not found", as the
        original's stats route said)."""
        name, service_id = _service_key(request)
        try:
            return self.services.get(heartbeat_name=name, service_id=service_id)["service_id"]
        except NotFound:
            what = f"Heartbeat {name!r}" if name is not None else f"Service ID {service_id}"
            raise NotFound(f"{what} not found.") from None

    def ListJobRuns(self, request, context):
        if not 0 <= request.limit <= MAX_LISTED_RUNS:
            raise InvalidArgument(f"limit must be 0-{MAX_LISTED_RUNS}")
        limit = request.limit or DEFAULT_LISTED_RUNS
        service_id = self._job_service(request)
        rows = self.runs.list_runs(service_id, limit + 1, request.offset)
        return heartbeat_pb2.ListJobRunsResponse(runs=[run_to_pb(r) for r in rows[:limit]],
                                                 has_more=len(rows) > limit)

    def GetJobStats(self, request, context):
        service_id = self._job_service(request)
        row = self.runs.stats(service_id)
        response = heartbeat_pb2.GetJobStatsResponse(service_id=service_id, run_count=row["run_count"],
                                                     ended_runs=row["ended_runs"])
        if row["run_count"] >= MIN_RUNS_FOR_STATS:
            p50, p95, p99 = row["percentiles"]
            response.avg_duration_ms = round(row["avg_duration_ms"], 2)
            response.p50_duration_ms, response.p95_duration_ms, response.p99_duration_ms = p50, p95, p99
            response.min_duration_ms, response.max_duration_ms = row["min_duration_ms"], row["max_duration_ms"]
        if row["ended_runs"]:
            response.success_rate = row["succeeded"] / row["ended_runs"]
        return response

    # --- quiet hours: acknowledgements, mutes, maintenance windows --------------

    def AcknowledgeAlert(self, request, context):
        row = self.alerts.acknowledge(request.alert_id, caller(), self.on_committed)
        return heartbeat_pb2.AcknowledgeAlertResponse(alert=alert_to_pb(row))

    def MuteService(self, request, context):
        reason = request.reason.strip()
        if len(reason) > MAX_MUTE_REASON:
            raise InvalidArgument(f"reason must be at most {MAX_MUTE_REASON} characters")
        if "\x00" in reason:
            raise InvalidArgument("reason must not contain NUL characters")
        until = _time(request, "until", "until")
        if until is not None and until <= dt.datetime.now(dt.timezone.utc):
            raise InvalidArgument("until must be in the future")
        ref = _service_ref(request)
        row = self.services.update({"muted": True, "mute_reason": reason or None, "muted_by": caller(),
                                    "muted_until": until}, related=self._related(self.services.get(**ref)), **ref)
        return heartbeat_pb2.MuteServiceResponse(service=service_to_pb(row))

    def UnmuteService(self, request, context):
        ref = _service_ref(request)
        row = self.services.update({"muted": False}, related=self._related(self.services.get(**ref)), **ref)
        return heartbeat_pb2.UnmuteServiceResponse(service=service_to_pb(row))

    def ListNotificationSkips(self, request, context):
        if request.WhichOneof("subject") is None:
            raise InvalidArgument("alert_id or service_id is required")
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit must be 0-1000")
        rows = self.alerts.list_skips(alert_id=request.alert_id, service_id=request.service_id,
                                      limit=request.limit or 100)
        return heartbeat_pb2.ListNotificationSkipsResponse(skips=[skip_to_pb(r) for r in rows])

    def CreateMaintenanceWindow(self, request, context):
        row = self.windows.create(window_fields(request.window), caller())
        return heartbeat_pb2.CreateMaintenanceWindowResponse(window=window_to_pb(row, _now()))

    def GetMaintenanceWindow(self, request, context):
        return heartbeat_pb2.GetMaintenanceWindowResponse(
            window=window_to_pb(self.windows.get(request.window_id), _now()))

    def ListMaintenanceWindows(self, request, context):
        now = _now()
        book = self.windows.book()
        found = [window_to_pb(row, now, book) for row in self.windows.list()]
        if request.active_only:
            found = [w for w in found if w.open_now]
        return heartbeat_pb2.ListMaintenanceWindowsResponse(windows=found)

    def UpdateMaintenanceWindow(self, request, context):
        row = self.windows.update(request.window_id, window_fields(request.window))
        return heartbeat_pb2.UpdateMaintenanceWindowResponse(window=window_to_pb(row, _now()))

    def DeleteMaintenanceWindow(self, request, context):
        self.windows.delete(request.window_id)
        return heartbeat_pb2.DeleteMaintenanceWindowResponse()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)

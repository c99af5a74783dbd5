"""The heartbeat service's reads for people (SearchServices, ListRecentTransitions,
GetHeartbeatTimeline, SearchAlerts) over real gRPC against a real PostgreSQL."""
from __future__ import annotations

import grpc
import pytest

from medic.v1 import common_pb2, heartbeat_pb2 as pb
from services.heartbeat import service_counts


def register(stub, name, interval=60, **fields):
    return stub.RegisterService(pb.RegisterServiceRequest(
        heartbeat_name=name, service_name=fields.pop("service_name", name), alert_interval_seconds=interval,
        **fields)).service


def names(response) -> list[str]:
    return [s.heartbeat_name for s in response.services]


@pytest.fixture
def fleet(heartbeats):
    """Five services, one in each condition, on two teams."""
    register(heartbeats, "api-gateway", team="edge", priority=common_pb2.PRIORITY_P1)
    register(heartbeats, "billing-worker", team="payments", service_name="Billing Jobs")
    register(heartbeats, "cron-cleanup", team="edge")
    register(heartbeats, "db-backup", team="payments", priority=common_pb2.PRIORITY_P1)
    register(heartbeats, "email-sender", team="edge")
    for name in ("api-gateway", "cron-cleanup"):
        heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name=name, status="UP"))
    heartbeats.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="billing-worker", status="FAILED"))
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="cron-cleanup", muted=True))
    heartbeats.UpdateService(pb.UpdateServiceRequest(heartbeat_name="email-sender", active=False))
    return heartbeats


def search(stub, **fields):
    return stub.SearchServices(pb.SearchServicesRequest(**fields))


def test_counts_every_condition_over_all_services(fleet):
    counts = search(fleet, counts_only=True).counts
    assert (counts.up, counts.down, counts.new, counts.muted, counts.inactive, counts.total) == (2, 1, 1, 1, 1, 5)
    assert search(fleet, counts_only=True).services == []


RECOUNT = """
    SELECT count(*) FILTER (WHERE active AND state = 'up') AS up, count(*) FILTER (WHERE active AND state = 'down') AS down,
           count(*) FILTER (WHERE active AND state = 'new') AS new, count(*) FILTER (WHERE active AND muted) AS muted,
           count(*) FILTER (WHERE NOT active) AS inactive, count(*) AS total
    FROM services
"""


def kept_counts(stub):
    c = search(stub, counts_only=True).counts
    return {"up": c.up, "down": c.down, "new": c.new, "muted": c.muted, "inactive": c.inactive, "total": c.total}


def test_the_kept_counts_follow_every_change_and_agree_with_a_recount(fleet, db):
    steps = [
        lambda: register(fleet, "fresh-one"),
        lambda: fleet.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="db-backup", status="UP")),
        lambda: fleet.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="billing-worker", status="UP")),
        lambda: fleet.UpdateService(pb.UpdateServiceRequest(heartbeat_name="api-gateway", muted=True)),
        lambda: fleet.UpdateService(pb.UpdateServiceRequest(heartbeat_name="cron-cleanup", muted=False)),
        lambda: fleet.UpdateService(pb.UpdateServiceRequest(heartbeat_name="api-gateway", active=False)),
        lambda: fleet.UpdateService(pb.UpdateServiceRequest(heartbeat_name="email-sender", active=True)),
        lambda: fleet.DeleteService(pb.DeleteServiceRequest(heartbeat_name="db-backup")),
        lambda: service_counts.fold(db),
        lambda: fleet.DeleteService(pb.DeleteServiceRequest(heartbeat_name="api-gateway")),
    ]
    for step in steps:
        step()
        assert kept_counts(fleet) == db.one(RECOUNT)
    assert kept_counts(fleet)["total"] == search(fleet).total_matching == 4
    assert search(fleet, condition=pb.SERVICE_CONDITION_UP).total_matching == db.one(RECOUNT)["up"]


def test_folding_the_kept_counts_leaves_one_row_with_the_same_sums(fleet, db):
    before = kept_counts(fleet)
    service_counts.fold(db)
    service_counts.fold(db)
    assert db.one("SELECT count(*) AS n FROM service_counts")["n"] == 1
    assert kept_counts(fleet) == before


@pytest.mark.parametrize("fields, expected", [
    ({"query": "BILL"}, ["billing-worker"]),
    ({"query": "jobs"}, ["billing-worker"]),  # the service name counts too
    ({"condition": pb.SERVICE_CONDITION_UP}, ["api-gateway", "cron-cleanup"]),
    ({"condition": pb.SERVICE_CONDITION_DOWN}, ["billing-worker"]),
    ({"condition": pb.SERVICE_CONDITION_NEW}, ["db-backup"]),
    ({"condition": pb.SERVICE_CONDITION_MUTED}, ["cron-cleanup"]),
    ({"condition": pb.SERVICE_CONDITION_INACTIVE}, ["email-sender"]),
    ({"team": "payments"}, ["billing-worker", "db-backup"]),
    ({"priority": common_pb2.PRIORITY_P1}, ["api-gateway", "db-backup"]),
    ({"active": False}, ["email-sender"]),
    ({"team": "edge", "condition": pb.SERVICE_CONDITION_UP, "query": "api"}, ["api-gateway"]),
])
def test_filters_combine_and_the_total_counts_the_matches(fleet, fields, expected):
    response = search(fleet, **fields)
    assert names(response) == expected
    assert response.total_matching == len(expected)


@pytest.mark.parametrize("query, expected", [
    ("ER", ["billing-worker", "email-sender"]),  # shorter than a trigram
    ("-ba", ["db-backup"]),
    ("ING-WOR", ["billing-worker"]),
    ("ling job", ["billing-worker"]),
    ("zzz", []),
])
def test_a_name_search_finds_every_service_containing_the_query_whatever_its_length(fleet, query, expected):
    response = search(fleet, query=query)
    assert names(response) == expected and response.total_matching == len(expected)


def test_a_service_is_found_by_its_current_service_name_only(fleet):
    fleet.UpdateService(pb.UpdateServiceRequest(heartbeat_name="billing-worker", service_name="Invoice runs"))
    assert names(search(fleet, query="jobs")) == []
    assert names(search(fleet, query="INVOICE R")) == ["billing-worker"]
    fleet.DeleteService(pb.DeleteServiceRequest(heartbeat_name="billing-worker"))
    assert names(search(fleet, query="invoice")) == []


def test_orders_and_pages(fleet):
    assert names(search(fleet, sort=pb.SERVICE_SORT_NAME, descending=True))[0] == "email-sender"
    # down first, then new, then up (inactive email-sender keeps its last state, new)
    assert names(search(fleet, sort=pb.SERVICE_SORT_STATE))[:3] == ["billing-worker", "db-backup", "email-sender"]
    # soonest deadline first; the inactive service has none and comes last either way
    by_deadline = names(search(fleet, sort=pb.SERVICE_SORT_DEADLINE))
    assert by_deadline[-1] == "email-sender"
    assert names(search(fleet, sort=pb.SERVICE_SORT_DEADLINE, descending=True))[-1] == "email-sender"
    # most recent heartbeat first; never-seen services last
    recent = names(search(fleet, sort=pb.SERVICE_SORT_LAST_HEARTBEAT))
    assert recent[0] == "billing-worker" and set(recent[-2:]) == {"db-backup", "email-sender"}
    first = search(fleet, page_size=2, offset=0)
    second = search(fleet, page_size=2, offset=2)
    assert names(first) == ["api-gateway", "billing-worker"] and names(second) == ["cron-cleanup", "db-backup"]
    assert first.total_matching == second.total_matching == 5


SORTS = [(sort, descending) for sort in (pb.SERVICE_SORT_NAME, pb.SERVICE_SORT_STATE, pb.SERVICE_SORT_LAST_HEARTBEAT,
                                          pb.SERVICE_SORT_DEADLINE) for descending in (False, True)]


@pytest.mark.parametrize("sort, descending", SORTS)
def test_cursors_walk_every_order_both_ways_as_offsets_do(fleet, sort, descending):
    register(fleet, "fresh-one", team="edge")  # six services: pages of 2, 2 and 2 (and 4, 2 by 4)
    whole = names(search(fleet, sort=sort, descending=descending))
    for size in (2, 4):
        ask = {"sort": sort, "descending": descending, "page_size": size}
        pages, page = [], search(fleet, **ask)
        assert page.previous_cursor == ""
        while True:
            pages.append(names(page))
            if not page.next_cursor:
                break
            page = search(fleet, cursor=page.next_cursor, **ask)
        assert pages == [whole[i:i + size] for i in range(0, len(whole), size)]
        back, page = [], search(fleet, last_page=True, **ask)
        assert page.next_cursor == "" and page.total_matching == 6
        while True:
            back.insert(0, names(page))
            if not page.previous_cursor:
                break
            page = search(fleet, cursor=page.previous_cursor, **ask)
        assert back == pages


def test_a_cursor_keeps_the_filters_of_its_request(fleet):
    first = search(fleet, team="edge", page_size=1, sort=pb.SERVICE_SORT_DEADLINE)
    second = search(fleet, team="edge", page_size=1, sort=pb.SERVICE_SORT_DEADLINE, cursor=first.next_cursor)
    assert first.total_matching == second.total_matching == 3
    assert names(first) + names(second) == names(search(fleet, team="edge", sort=pb.SERVICE_SORT_DEADLINE))[:2]
    found = search(fleet, query="er", page_size=1, last_page=True)
    assert names(found) == ["email-sender"] and names(search(fleet, query="er", cursor=found.previous_cursor)) == [
        "billing-worker"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "x" * 2049])
def test_a_cursor_no_search_gave_is_invalid_argument(heartbeats, cursor):
    with pytest.raises(grpc.RpcError) as info:
        search(heartbeats, cursor=cursor)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_cursor_of_another_order_is_invalid_argument(fleet):
    cursor = search(fleet, page_size=2, sort=pb.SERVICE_SORT_DEADLINE).next_cursor
    with pytest.raises(grpc.RpcError) as info:
        search(fleet, page_size=2, sort=pb.SERVICE_SORT_DEADLINE, descending=True, cursor=cursor)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "cursor" in info.value.details()


@pytest.mark.parametrize("fields", [{"page_size": 501}, {"offset": -1}, {"condition": 99}, {"sort": 99},
                                    {"query": "x" * 256}, {"priority": 42}])
def test_bad_search_requests_are_invalid_argument(heartbeats, fields):
    with pytest.raises(grpc.RpcError) as info:
        search(heartbeats, **fields)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_recent_transitions_across_services_newest_first_with_names(fleet):
    changes = fleet.ListRecentTransitions(pb.ListRecentTransitionsRequest(limit=3)).transitions
    assert [(c.heartbeat_name, c.transition.reason) for c in changes] == [
        ("email-sender", "deactivated"), ("cron-cleanup", "muted"), ("billing-worker", "reported_failure")]


def test_the_timeline_counts_heartbeats_per_bucket_and_leaves_gaps_empty(fleet):
    for status in ("UP", "UP", "FAILED"):
        fleet.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="api-gateway", status=status))
    timeline = fleet.GetHeartbeatTimeline(pb.GetHeartbeatTimelineRequest(
        heartbeat_name="api-gateway", window_seconds=3600, buckets=60))
    assert len(timeline.buckets) == 60 and timeline.bucket_seconds == 60
    assert [(b.heartbeats, b.failures) for b in timeline.buckets[-1:]] == [(4, 1)]
    assert all(b.heartbeats == 0 for b in timeline.buckets[:-2])  # the gaps
    assert timeline.buckets[0].start.ToDatetime() == timeline.start.ToDatetime()
    with pytest.raises(grpc.RpcError) as info:
        fleet.GetHeartbeatTimeline(pb.GetHeartbeatTimelineRequest(heartbeat_name="nobody"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        fleet.GetHeartbeatTimeline(pb.GetHeartbeatTimelineRequest(heartbeat_name="api-gateway", buckets=5000))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_alert_search_filters_by_service_team_reason_and_state(fleet):
    billing = fleet.GetService(pb.GetServiceRequest(heartbeat_name="billing-worker")).service
    found = fleet.SearchAlerts(pb.SearchAlertsRequest(team="payments", active=True)).alerts
    assert [(a.alert.heartbeat_name, a.team, a.alert.reason) for a in found] == [
        ("billing-worker", "payments", pb.ALERT_REASON_REPORTED_FAILURE)]
    assert fleet.SearchAlerts(pb.SearchAlertsRequest(service_id=billing.service_id)).alerts[0].alert.active
    assert fleet.SearchAlerts(pb.SearchAlertsRequest(team="edge")).alerts == []
    assert fleet.SearchAlerts(pb.SearchAlertsRequest(reason=pb.ALERT_REASON_MISSED_HEARTBEATS)).alerts == []
    assert fleet.SearchAlerts(pb.SearchAlertsRequest(active=False)).alerts == []


def test_a_text_search_past_its_last_page_still_counts_its_matches(fleet):
    response = search(fleet, query="E", offset=100)
    assert names(response) == [] and response.total_matching == 4  # every name but db-backup


def test_the_alert_search_counts_all_matches_when_asked(fleet):
    register(fleet, "second-failure")
    fleet.RecordHeartbeat(pb.RecordHeartbeatRequest(heartbeat_name="second-failure", status="DOWN"))
    response = fleet.SearchAlerts(pb.SearchAlertsRequest(active=True, limit=1, include_total=True))
    assert len(response.alerts) == 1 and response.total_matching == 2
    assert fleet.SearchAlerts(pb.SearchAlertsRequest(active=True, limit=1)).total_matching == 0  # not asked

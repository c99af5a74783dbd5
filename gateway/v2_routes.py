"""The /v2 management routes (SPEC section 7), one RPC each."""
from gateway.v2 import RpcRoute

HEARTBEAT = "medic.v1.HeartbeatService/"
ROUTING = "medic.v1.RoutingService/"

TABLE: list[RpcRoute] = [
    # services (the legacy /service endpoints cover the rest)
    RpcRoute("DELETE", "/v2/services/{service_id:int}", HEARTBEAT + "DeleteService",
             "Delete a service with its heartbeats, alerts and notification targets",
             message="Service deleted."),
    RpcRoute("GET", "/v2/services/{service_id:int}/transitions", HEARTBEAT + "ListServiceTransitions",
             "A service's state changes, newest first", query=("limit",), result="transitions"),
    # teams
    RpcRoute("POST", "/v2/teams", ROUTING + "CreateTeam", "Create a team", body=True, status=201,
             result="team", message="Team created."),
    RpcRoute("GET", "/v2/teams", ROUTING + "ListTeams", "List teams", result="teams"),
    RpcRoute("GET", "/v2/teams/{team_id:int}", ROUTING + "GetTeam", "Get a team", result="team"),
    RpcRoute("PATCH", "/v2/teams/{team_id:int}", ROUTING + "UpdateTeam",
             "Change a team's name or Slack channel (\"\" removes the channel)", body=True, result="team",
             message="Team updated."),
    RpcRoute("DELETE", "/v2/teams/{team_id:int}", ROUTING + "DeleteTeam",
             "Delete a team (its services stay, without a team)", message="Team deleted."),
    # notification targets
    RpcRoute("POST", "/v2/notification-targets", ROUTING + "CreateNotificationTarget",
             "Add a notification target to a service", body=True, status=201, result="target",
             message="Notification target created."),
    RpcRoute("GET", "/v2/notification-targets", ROUTING + "ListNotificationTargets",
             "List notification targets", query=("service_id",), result="targets"),
    RpcRoute("PATCH", "/v2/notification-targets/{target_id:int}", ROUTING + "UpdateNotificationTarget",
             "Change a notification target", body=True, result="target",
             message="Notification target updated."),
    RpcRoute("DELETE", "/v2/notification-targets/{target_id:int}", ROUTING + "DeleteNotificationTarget",
             "Delete a notification target", message="Notification target deleted."),
]

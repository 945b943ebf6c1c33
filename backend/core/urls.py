from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("", views.api_index, name="index"),
    path("clients/", views.clients, name="clients"),
    path("projects/", views.projects, name="projects"),
    path(
        "projects/<uuid:project_id>/dashboard/guest-token/",
        views.project_dashboard_guest_token,
        name="project-dashboard-guest-token",
    ),
    path("agents/", views.agents, name="agents"),
    path("expertise-areas/", views.expertise_areas, name="expertise-areas"),
    path("knowledge-bases/", views.knowledge_bases, name="knowledge-bases"),
    path("chat-sessions/", views.chat_sessions, name="chat-sessions"),
    path("version/", views.api_version, name="version"),
    path("health/", views.health, name="health"),
    path("health/ready/", views.ready, name="ready"),
    path("health/email/", views.health_email, name="health-email"),
]

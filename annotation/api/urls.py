from django.urls import include, path

from annotation.api import imports, labeling, models, projects

urlpatterns = [
    path("projects/", projects.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path(
        "projects/<int:project_id>/members/", projects.MemberListApi.as_view(), name="api-members"
    ),
    path(
        "projects/<int:project_id>/members/<str:username>/",
        projects.MemberDetailApi.as_view(),
        name="api-member",
    ),
    path(
        "projects/<int:project_id>/prompts/", projects.PromptListApi.as_view(), name="api-prompts"
    ),
    path(
        "projects/<int:project_id>/prompts/<int:prompt_id>/responses/",
        projects.PromptResponsesApi.as_view(),
        name="api-prompt-responses",
    ),
    path("projects/<int:project_id>/tasks/", projects.TaskListApi.as_view(), name="api-tasks"),
    path(
        "projects/<int:project_id>/tasks/<int:task_id>/",
        projects.TaskDetailApi.as_view(),
        name="api-task",
    ),
    path("projects/<int:project_id>/import/", imports.ImportApi.as_view(), name="api-import"),
    path(
        "projects/<int:project_id>/imports/<int:job_id>/",
        imports.ImportJobDetailApi.as_view(),
        name="api-import-job",
    ),
    path("projects/<int:project_id>/next/", labeling.NextTaskApi.as_view(), name="api-next"),
    path(
        "projects/<int:project_id>/judgments/",
        labeling.JudgmentListApi.as_view(),
        name="api-judgments",
    ),
    path(
        "projects/<int:project_id>/model-versions/",
        models.ModelVersionListApi.as_view(),
        name="api-model-versions",
    ),
    path(
        "projects/<int:project_id>/training-runs/",
        models.TrainingRunListApi.as_view(),
        name="api-training-runs",
    ),
    path(
        "assignments/<int:assignment_id>/",
        labeling.AssignmentDetailApi.as_view(),
        name="api-assignment",
    ),
    path("assignments/<int:assignment_id>/skip/", labeling.SkipApi.as_view(), name="api-skip"),
    path("assignments/<int:assignment_id>/renew/", labeling.RenewApi.as_view(), name="api-renew"),
    path(
        "assignments/<int:assignment_id>/judgment/", labeling.SubmitApi.as_view(), name="api-submit"
    ),
    path("judgments/<int:judgment_id>/", labeling.JudgmentDetailApi.as_view(), name="api-judgment"),
    path("judgments/<int:judgment_id>/revise/", labeling.ReviseApi.as_view(), name="api-revise"),
    path("", include("annotation.api.insight_urls")),
    path("", include("annotation.api.loop_urls")),
    path("", include("annotation.api.ai_feedback_urls")),
]

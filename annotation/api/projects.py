"""Projects, members, prompts, tasks: the manager's side of the API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.pagination import paginate
from annotation.api.scoping import scoped_manager_project, scoped_project
from annotation.api.serializers import (
    ProjectIn,
    ProjectOut,
    ProjectUpdateIn,
    PromptOut,
    ResponseDetailOut,
    TaskOut,
)
from annotation.errors import NotFound, PermissionDenied, ValidationFailed
from annotation.models import Membership, Prompt, Task
from annotation.models import Response as ResponseRow
from annotation.selectors import (
    projects_for_user,
)
from annotation.services.projects import (
    membership_remove,
    membership_set,
    project_create,
    project_update,
)


def _roles(user) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return dict(Membership.objects.filter(user=user).values_list("project_id", "role"))


class ProjectListApi(APIView):
    @extend_schema(responses=ProjectOut(many=True), summary="Projects you belong to")
    def get(self, request: Request) -> Response:
        projects = projects_for_user(user=request.user).order_by("id")
        return paginate(request, projects, ProjectOut, context={"roles": _roles(request.user)})

    @extend_schema(request=ProjectIn, responses={201: ProjectOut}, summary="Create a project")
    def post(self, request: Request) -> Response:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff users may create projects.")
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(owner=request.user, **data.validated_data)
        return Response(
            ProjectOut(project, context={"roles": _roles(request.user)}).data, status=201
        )


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOut, summary="One project")
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = scoped_project(request, project_id)
        return Response(ProjectOut(project, context={"roles": _roles(request.user)}).data)

    @extend_schema(request=ProjectUpdateIn, responses=ProjectOut, summary="Change settings")
    def patch(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        data = ProjectUpdateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project = project_update(project=project, **data.validated_data)
        return Response(ProjectOut(project, context={"roles": _roles(request.user)}).data)


class MemberIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=["labeler", "manager", "admin"])


class MemberOut(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()


class MemberListApi(APIView):
    @extend_schema(responses=MemberOut(many=True), summary="Project members (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        members = project.memberships.select_related("user").order_by("id")
        return paginate(request, members, MemberOut)

    @extend_schema(request=MemberIn, responses={200: MemberOut}, summary="Add or change a member")
    def post(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        data = MemberIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"]).first()
        if user is None:
            raise ValidationFailed("No user with that username.", field="username")
        membership = membership_set(project=project, user=user, role=data.validated_data["role"])
        return Response(MemberOut(membership).data)


class MemberDetailApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Remove a member (managers)",
        description="Their live leases end at once and every route of the project answers them "
        "404 from then on; their judgments stay. 409 for the project's last admin.",
    )
    def delete(self, request: Request, project_id: int, username: str) -> Response:
        project = scoped_manager_project(request, project_id)
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise NotFound(f"{username} is not a member of this project.")
        membership_remove(project=project, user=user)
        return Response(status=204)


class PromptListApi(APIView):
    @extend_schema(responses=PromptOut(many=True), summary="Prompts (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        return paginate(request, Prompt.objects.filter(project=project).order_by("id"), PromptOut)


class PromptResponsesApi(APIView):
    @extend_schema(responses=ResponseDetailOut(many=True), summary="A prompt's responses")
    def get(self, request: Request, project_id: int, prompt_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        if not Prompt.objects.filter(project=project, id=prompt_id).exists():
            raise NotFound(f"Prompt {prompt_id} not found.")
        rows = ResponseRow.objects.filter(prompt_id=prompt_id).order_by("id")
        return paginate(request, rows, ResponseDetailOut)


class TaskListApi(APIView):
    @extend_schema(responses=TaskOut(many=True), summary="Tasks (managers)")
    def get(self, request: Request, project_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        tasks = Task.objects.filter(project=project).prefetch_related("task_responses")
        status = request.query_params.get("status")
        if status:
            tasks = tasks.filter(status=status)
        return paginate(request, tasks.order_by("id"), TaskOut)


class TaskDetailApi(APIView):
    @extend_schema(responses=TaskOut, summary="One task (managers)")
    def get(self, request: Request, project_id: int, task_id: int) -> Response:
        project = scoped_manager_project(request, project_id)
        task = Task.objects.filter(project=project, id=task_id).first()
        if task is None:
            raise NotFound(f"Task {task_id} not found.")
        return Response(TaskOut(task).data)

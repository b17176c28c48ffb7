urlpatterns: list = [
    # GET /events/ (the SSE stream) and /metrics arrive with the streams issue.
]

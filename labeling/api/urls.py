urlpatterns = []  # filled by the queue/API work (issue 3)

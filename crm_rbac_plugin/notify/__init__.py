"""Notifications: the queue, the in-app list and the mail worker."""

"""The web app: static files (ES modules, CSS, the Socket.IO client) served at `/`, plus the
two small JSON reads the app needs beyond the API (`/api/presence`, `/api/admin/health`)."""

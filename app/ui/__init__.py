"""The Qt desktop layer. Depends on ``app.core``; core never imports from here."""

"""Real-browser tests: Playwright driving Debian's /usr/bin/chromium."""

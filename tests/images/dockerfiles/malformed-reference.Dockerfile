FROM Debian:12
COPY app /app

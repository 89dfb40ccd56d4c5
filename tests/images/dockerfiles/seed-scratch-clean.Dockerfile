FROM scratch
ADD application /
CMD ["/application", "-m", "release"]

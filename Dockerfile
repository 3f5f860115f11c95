# atleus-dist on the official Ray image of the pinned Ray version (see pyproject.toml).
# The COPY lines are everything the installed package needs (its models, scenarios and arch files
# ship inside atleus_dist/ as package data) plus cluster/ for `ray job submit`/`ray submit`;
# tests/test_dockerfile.py builds a wheel from exactly these files and runs it.
FROM rayproject/ray:2.60.0-py311-cpu
# made by the image's user (ray): WORKDIR alone would create it owned by root, and the build
# below writes into it
RUN mkdir -p /home/ray/atleus-dist
WORKDIR /home/ray/atleus-dist
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users atleus_dist ./atleus_dist
COPY --chown=ray:users cluster ./cluster
RUN pip install --no-cache-dir . && rm -rf build ./*.egg-info
CMD ["atleus-dist", "--help"]

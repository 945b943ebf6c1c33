#!/bin/sh
# Containers have no init system: stop package scripts from starting services (mariadb, postgres,
# redis, nginx) during `apt-get install`; 101 = "action forbidden by policy".
exit 101

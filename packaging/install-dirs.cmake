# Which folders `cmake --install` made, so that the uninstall target (packaging/uninstall.cmake)
# removes those and no other. Included by the install's first step with EBPFMON_INSTALL_STEP
# "begin" and by its last with "end" (CMakeLists.txt); both run in the one cmake_install.cmake
# scope, so "begin" leaves its notes in a variable for "end".
#
# The folders looked at are those this project installs into (EBPFMON_INSTALL_DIRS, relative to
# the install prefix unless absolute) and every parent of them. "end" writes EBPFMON_DIRS_FILE:
# the folders that were missing at "begin" and are there now, together with those a previous
# install noted that are still there (an install over an install made them just the same).
# Its first line is "DESTDIR=" and the DESTDIR of the install (CPack installs into a staging
# DESTDIR, and its install_manifest.txt replaces the last one's): the uninstall refuses to act
# on a record of another DESTDIR. A line "CONFFILE=PATH" says that an install from this build
# folder put the configuration EBPFMON_CONFFILE there: a later install keeps the file and so
# does not list it in install_manifest.txt, but it is still the install's to remove (when
# unedited). Paths in it are without $DESTDIR, like install_manifest.txt's.

cmake_policy(VERSION 3.20) # in the policy scope of this include()

set(_destdir "$ENV{DESTDIR}")
set(_candidates)
foreach(_dir IN LISTS EBPFMON_INSTALL_DIRS)
	if(NOT IS_ABSOLUTE "${_dir}")
		set(_dir "${CMAKE_INSTALL_PREFIX}/${_dir}")
	endif()
	cmake_path(NORMAL_PATH _dir)
	string(REGEX REPLACE "(.)/$" "\\1" _dir "${_dir}")
	while(NOT _dir STREQUAL "/" AND NOT _dir STREQUAL "")
		list(APPEND _candidates "${_dir}")
		get_filename_component(_dir "${_dir}" DIRECTORY)
	endwhile()
endforeach()
list(REMOVE_DUPLICATES _candidates)

if(EBPFMON_INSTALL_STEP STREQUAL "begin")
	set(EBPFMON_DIRS_MISSING)
	foreach(_dir IN LISTS _candidates)
		if(NOT IS_DIRECTORY "${_destdir}${_dir}")
			list(APPEND EBPFMON_DIRS_MISSING "${_dir}")
		endif()
	endforeach()
elseif(EBPFMON_INSTALL_STEP STREQUAL "end")
	set(_made)
	if(EXISTS "${EBPFMON_DIRS_FILE}")
		file(STRINGS "${EBPFMON_DIRS_FILE}" _made)
		list(POP_FRONT _made _first)
		if(NOT _first STREQUAL "DESTDIR=${_destdir}")
			set(_made) # another DESTDIR's
		endif()
	endif()
	set(_text "DESTDIR=${_destdir}\n")
	if(EXISTS "${_destdir}${EBPFMON_CONFFILE}" AND
			("${EBPFMON_CONFFILE}" IN_LIST CMAKE_INSTALL_MANIFEST_FILES OR
			"CONFFILE=${EBPFMON_CONFFILE}" IN_LIST _made))
		string(APPEND _text "CONFFILE=${EBPFMON_CONFFILE}\n")
	endif()
	list(FILTER _made EXCLUDE REGEX "^CONFFILE=")
	list(APPEND _made ${EBPFMON_DIRS_MISSING})
	list(REMOVE_DUPLICATES _made)
	foreach(_dir IN LISTS _made)
		if(IS_DIRECTORY "${_destdir}${_dir}")
			string(APPEND _text "${_dir}\n")
		endif()
	endforeach()
	file(WRITE "${EBPFMON_DIRS_FILE}" "${_text}")
else()
	message(FATAL_ERROR "install-dirs.cmake: EBPFMON_INSTALL_STEP is '${EBPFMON_INSTALL_STEP}', "
		"not begin or end")
endif()

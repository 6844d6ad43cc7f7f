# Remove what `cmake --install` installed: `cmake --build build --target uninstall`, with the
# same DESTDIR as the install if it had one.
#
#   cmake -DMANIFEST=build/install_manifest.txt -DDIRS=build/install_dirs.txt
#         -DCONFFILE=/etc/ebpfmon/ebpfmon.conf -DSHIPPED_CONF=conf/ebpfmon.conf
#         -P packaging/uninstall.cmake
#
# Every file of MANIFEST is removed and named; one already gone is said so. CONFFILE, when an
# install from this build folder put it there (MANIFEST, or DIRS when a later install kept it),
# is removed only when it is still the shipped SHIPPED_CONF: an edited configuration is kept
# and named. Then the folders of DIRS (those the install made, see
# packaging/install-dirs.cmake) are removed, deepest first, when they are empty. MANIFEST and
# DIRS hold paths without $DESTDIR; it is prepended here. Exit status non-zero when a file
# could not be removed or MANIFEST is missing.

cmake_minimum_required(VERSION 3.20)

foreach(_var MANIFEST DIRS CONFFILE SHIPPED_CONF)
	if(NOT DEFINED ${_var})
		message(FATAL_ERROR "uninstall.cmake: -D${_var}=... is missing")
	endif()
endforeach()
if(NOT EXISTS "${MANIFEST}")
	message(FATAL_ERROR "uninstall: ${MANIFEST} not found: nothing was installed from this "
		"build folder (cmake --install writes it)")
endif()

set(_destdir "$ENV{DESTDIR}")
# DIRS names the DESTDIR of the install that wrote MANIFEST (packaging/install-dirs.cmake)
set(_dirs)
if(EXISTS "${DIRS}")
	file(STRINGS "${DIRS}" _dirs)
	list(POP_FRONT _dirs _first)
	string(REGEX REPLACE "^DESTDIR=" "" _install_destdir "${_first}")
	if(NOT _install_destdir STREQUAL _destdir)
		if(_install_destdir STREQUAL "")
			set(_how "without DESTDIR")
		else()
			set(_how "with DESTDIR=${_install_destdir}")
		endif()
		message(FATAL_ERROR "uninstall: the last install from this build folder was made "
			"${_how} (${DIRS}); run the uninstall ${_how} too (CPack's staging install "
			"counts: a package build folder has nothing to uninstall)")
	endif()
else()
	message(STATUS "${DIRS} not found: files only, no folder is removed")
endif()
file(STRINGS "${MANIFEST}" _files)
# the configuration an earlier install from this build folder put there, which the last one kept
if("CONFFILE=${CONFFILE}" IN_LIST _dirs AND NOT CONFFILE IN_LIST _files)
	list(APPEND _files "${CONFFILE}")
endif()
list(FILTER _dirs EXCLUDE REGEX "^CONFFILE=")
set(_removed 0)
set(_gone 0)
set(_failed 0)
foreach(_file IN LISTS _files)
	set(_path "${_destdir}${_file}")
	if(NOT EXISTS "${_path}" AND NOT IS_SYMLINK "${_path}")
		message(STATUS "Already gone: ${_path}")
		math(EXPR _gone "${_gone} + 1")
		continue()
	endif()
	if(_file STREQUAL CONFFILE)
		execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${_path}" "${SHIPPED_CONF}"
			RESULT_VARIABLE _differs OUTPUT_QUIET ERROR_QUIET)
		if(NOT _differs EQUAL 0)
			message(STATUS "Keeping: ${_path} (changed since it was installed; it differs "
				"from ${SHIPPED_CONF})")
			continue()
		endif()
	endif()
	file(REMOVE "${_path}")
	if(EXISTS "${_path}" OR IS_SYMLINK "${_path}")
		message(SEND_ERROR "uninstall: could not remove ${_path}")
		math(EXPR _failed "${_failed} + 1")
	else()
		message(STATUS "Removed: ${_path}")
		math(EXPR _removed "${_removed} + 1")
	endif()
endforeach()

# the folders the install made, deepest first, when nothing else is in them
list(SORT _dirs ORDER DESCENDING)
set(_kept_dirs)
foreach(_dir IN LISTS _dirs)
	set(_path "${_destdir}${_dir}")
	if(NOT IS_DIRECTORY "${_path}")
		continue()
	endif()
	file(GLOB _entries "${_path}/*" "${_path}/.*")
	if(_entries)
		list(APPEND _kept_dirs "${_dir}")
		continue()
	endif()
	execute_process(COMMAND rmdir "${_path}" RESULT_VARIABLE _rc ERROR_VARIABLE _err)
	if(_rc EQUAL 0)
		message(STATUS "Removed folder: ${_path}")
	else()
		list(APPEND _kept_dirs "${_dir}")
		string(STRIP "${_err}" _err)
		message(STATUS "Keeping folder: ${_path}: ${_err}")
	endif()
endforeach()
# what is kept stays noted, so that uninstalling again after emptying it by hand removes it
if(EXISTS "${DIRS}")
	set(_text "DESTDIR=${_destdir}\n")
	foreach(_dir IN LISTS _kept_dirs)
		string(APPEND _text "${_dir}\n")
	endforeach()
	file(WRITE "${DIRS}" "${_text}")
endif()

message(STATUS "Uninstall: ${_removed} removed, ${_gone} already gone")
if(_failed GREATER 0)
	message(FATAL_ERROR "uninstall: ${_failed} file(s) could not be removed")
endif()

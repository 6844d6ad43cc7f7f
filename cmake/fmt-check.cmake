# The fmt-check target: which C sources clang-format (the .clang-format at the root) would
# change. Touches nothing; exits non-zero listing them, so that CI can run it.
#
#   cmake -DCLANG_FORMAT=clang-format -DSOURCES=build/fmt-sources.txt -DSOURCE_DIR=. \
#         -P cmake/fmt-check.cmake
#
# SOURCES holds one absolute path a line (written at configure time, CMakeLists.txt).

foreach(_var CLANG_FORMAT SOURCES SOURCE_DIR)
	if(NOT DEFINED ${_var})
		message(FATAL_ERROR "fmt-check.cmake: -D${_var}=... is missing")
	endif()
endforeach()
file(STRINGS "${SOURCES}" _files)
set(_bad)
set(_lines 0)
foreach(_file IN LISTS _files)
	execute_process(COMMAND "${CLANG_FORMAT}" --style=file --fallback-style=none "${_file}"
		OUTPUT_VARIABLE _formatted ERROR_VARIABLE _err RESULT_VARIABLE _rc)
	if(NOT _rc EQUAL 0)
		message(FATAL_ERROR "fmt-check: ${CLANG_FORMAT} ${_file} failed (${_rc}): ${_err}")
	endif()
	file(READ "${_file}" _text)
	if(NOT _text STREQUAL _formatted)
		file(RELATIVE_PATH _rel "${SOURCE_DIR}" "${_file}")
		list(APPEND _bad "${_rel}")
	endif()
endforeach()
list(LENGTH _files _n)
list(LENGTH _bad _nbad)
if(_nbad GREATER 0)
	list(JOIN _bad "\n  " _list)
	message("fmt-check: ${_nbad} of ${_n} C sources are not formatted as .clang-format says:\n"
		"  ${_list}\n"
		"`cmake --build BUILD --target fmt` formats them (clang-format -i); "
		"`clang-format --dry-run FILE` shows what would change.")
	message(FATAL_ERROR "fmt-check: ${_nbad} file(s) not formatted")
endif()
message(STATUS "fmt-check: the ${_n} C sources are formatted as .clang-format says")

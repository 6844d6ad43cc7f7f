# cmake -DCMD=<program^arg^...> -DOUT=<file> -P RunToFile.cmake
# Runs CMD with its standard output going to OUT.tmp, then renames that to OUT, so that OUT
# is either complete or absent; a failing CMD fails the build and leaves OUT untouched.
string(REPLACE "^" ";" CMD "${CMD}")
execute_process(COMMAND ${CMD} OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
	file(REMOVE ${OUT}.tmp)
	message(FATAL_ERROR "${CMD} failed: ${rc}")
endif()
file(RENAME ${OUT}.tmp ${OUT})

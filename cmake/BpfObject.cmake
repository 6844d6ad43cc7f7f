# Rules that build vmlinux.h, BPF objects and their libbpf skeletons.
#
# ebpfmon_bpf_object(NAME SOURCE) compiles SOURCE into ${NAME}.bpf.o and generates
# ${NAME}.skel.h beside it in the current binary directory, and defines an INTERFACE target
# ${NAME}_skel that puts that directory on the include path of whoever links it.
# ebpfmon_vmlinux_rules() must be called first, in the same directory (Makefile generators
# only see a custom command's output from the directory that defines it).
# Every output is written to a temporary file and renamed, so an interrupted build never
# leaves a truncated object or header behind; clang's depfile tracks the headers included.

set(EBPFMON_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
set(EBPFMON_VMLINUX_OUT ${EBPFMON_BPF_GEN_DIR}/vmlinux.h)
set(_ebpfmon_run_to_file ${CMAKE_CURRENT_LIST_DIR}/RunToFile.cmake)

function(ebpfmon_vmlinux_rules)
if(EBPFMON_VMLINUX_H)
	add_custom_command(OUTPUT ${EBPFMON_VMLINUX_OUT}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${EBPFMON_BPF_GEN_DIR}
		COMMAND ${CMAKE_COMMAND} -E copy ${EBPFMON_VMLINUX_H} ${EBPFMON_VMLINUX_OUT}.tmp
		COMMAND ${CMAKE_COMMAND} -E rename ${EBPFMON_VMLINUX_OUT}.tmp ${EBPFMON_VMLINUX_OUT}
		DEPENDS ${EBPFMON_VMLINUX_H}
		COMMENT "Copying vmlinux.h from ${EBPFMON_VMLINUX_H}")
else()
	add_custom_command(OUTPUT ${EBPFMON_VMLINUX_OUT}
		COMMAND ${CMAKE_COMMAND} -E make_directory ${EBPFMON_BPF_GEN_DIR}
		COMMAND ${CMAKE_COMMAND} -DOUT=${EBPFMON_VMLINUX_OUT}
			"-DCMD=${BPFTOOL}^btf^dump^file^${EBPFMON_VMLINUX_BTF}^format^c"
			-P ${_ebpfmon_run_to_file}
			VERBATIM
		DEPENDS ${EBPFMON_VMLINUX_BTF}
		COMMENT "Generating vmlinux.h from ${EBPFMON_VMLINUX_BTF}")
endif()
endfunction()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
	set(EBPFMON_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
	set(EBPFMON_BPF_ARCH arm64)
else()
	set(EBPFMON_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(ebpfmon_bpf_object name source)
	set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
	set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
	get_filename_component(src ${source} ABSOLUTE)
	add_custom_command(OUTPUT ${obj}
		COMMAND ${CLANG} -g -O2 -target bpf -mcpu=v3
			-D__TARGET_ARCH_${EBPFMON_BPF_ARCH}
			-Wall -Wextra -Werror -Wno-unused-parameter
			-I${EBPFMON_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/common
			-I${CMAKE_CURRENT_SOURCE_DIR}
			-MD -MF ${obj}.d -MT ${obj}
			-c ${src} -o ${obj}.tmp
		COMMAND ${CMAKE_COMMAND} -E rename ${obj}.tmp ${obj}
		DEPENDS ${src} ${EBPFMON_VMLINUX_OUT}
		DEPFILE ${obj}.d
		COMMENT "Compiling BPF object ${name}.bpf.o")
	add_custom_command(OUTPUT ${skel}
		COMMAND ${CMAKE_COMMAND} -DOUT=${skel}
			"-DCMD=${BPFTOOL}^gen^skeleton^${obj}^name^${name}"
			-P ${_ebpfmon_run_to_file}
			VERBATIM
		DEPENDS ${obj}
		COMMENT "Generating skeleton ${name}.skel.h")
	add_custom_target(${name}_skel_gen DEPENDS ${skel} ${obj})
	add_library(${name}_skel INTERFACE)
	add_dependencies(${name}_skel ${name}_skel_gen)
	target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
	target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()

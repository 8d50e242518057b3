# tools/embed_assets.cmake: turns the HTML report's style and script (tools/html/report.css and
# report.js) into include/memlens/view/html_assets.hpp, so that the library stays header-only
# while the script stays a real file that tools can lint. Runs with CMake alone:
#
#   cmake -DOUTPUT=<header> [-DEXPECTED=<header>] -P tools/embed_assets.cmake
#
# OUTPUT is written only when its text changes, so regenerating an unchanged header rebuilds
# nothing. With EXPECTED, the script fails when the header it generated differs from that file:
# the test that the committed header was regenerated after the last change to tools/html.
cmake_minimum_required(VERSION 3.16)

if(NOT OUTPUT)
  message(FATAL_ERROR "usage: cmake -DOUTPUT=<header> [-DEXPECTED=<header>] -P embed_assets.cmake")
endif()

set(assets_dir "${CMAKE_CURRENT_LIST_DIR}/html")
# One raw string literal per piece: C++ compilers limit one literal's length (MSVC to 16,380
# bytes per piece), so no piece is longer than this, and pieces end at line ends.
set(piece_bytes 4000)
set(delimiter "memlens_asset")

# Appends to `out_var` the text of `file` as the elements of a string_view array: raw string
# literals of at most piece_bytes each, cut after a newline when the piece has one.
function(memlens_asset_pieces out_var file closing_tag)
  file(READ "${file}" text)
  if(text STREQUAL "")
    message(FATAL_ERROR "${file} is empty")
  endif()
  if(text MATCHES "\r")
    message(FATAL_ERROR "${file}: carriage returns would reach the page; save it with LF line ends")
  endif()
  string(FIND "${text}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains the raw string delimiter )${delimiter}\"")
  endif()
  # The text is inlined into the page, where this tag would end its element early.
  string(TOLOWER "${text}" lower)
  string(FIND "${lower}" "${closing_tag}" early_end)
  if(NOT early_end EQUAL -1)
    message(FATAL_ERROR "${file} contains ${closing_tag}, which would end its element in the page")
  endif()

  set(pieces "")
  string(LENGTH "${text}" left)
  while(left GREATER 0)
    if(left GREATER piece_bytes)
      string(SUBSTRING "${text}" 0 ${piece_bytes} piece)
      string(FIND "${piece}" "\n" last_newline REVERSE)
      if(last_newline GREATER -1)
        math(EXPR cut "${last_newline} + 1")
        string(SUBSTRING "${piece}" 0 ${cut} piece)
      endif()
    else()
      set(piece "${text}")
    endif()
    string(LENGTH "${piece}" taken)
    string(SUBSTRING "${text}" ${taken} -1 text)
    math(EXPR left "${left} - ${taken}")
    string(APPEND pieces "R\"${delimiter}(${piece})${delimiter}\",\n")
  endwhile()
  set(${out_var} "${pieces}" PARENT_SCOPE)
endfunction()

memlens_asset_pieces(style_pieces "${assets_dir}/report.css" "</style")
memlens_asset_pieces(script_pieces "${assets_dir}/report.js" "</script")

set(header "// memlens/view/html_assets.hpp: the HTML report's style and script, generated from
// tools/html/report.css and report.js by tools/embed_assets.cmake. Do not edit by hand: edit those
// files and build the memlens_embed_assets target, which rewrites this one.
#pragma once

#include <string_view>

#include \"../detail/config.hpp\"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Each asset is the concatenation of its pieces, which stay under compilers' limits on the
// length of one string literal.
inline constexpr std::string_view html_style[] = {
${style_pieces}};

inline constexpr std::string_view html_script[] = {
${script_pieces}};

}  // namespace detail
MEMLENS_NAMESPACE_END
")

set(old "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL header)
  file(WRITE "${OUTPUT}" "${header}")
endif()

if(EXPECTED)
  file(READ "${EXPECTED}" committed)
  if(NOT committed STREQUAL header)
    message(FATAL_ERROR "${EXPECTED} is out of date with tools/html: build the "
      "memlens_embed_assets target to regenerate it (the header generated now is ${OUTPUT})")
  endif()
endif()

#include "ec_board.h"
#include "ec_harness.h"

int main(void)
{
    board_init();
    ec_harness_run();
}

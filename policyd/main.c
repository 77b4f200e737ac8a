/* main.c: postern-policyd (being written) */
int main(void)
{
    return 1;
}
